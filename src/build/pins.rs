//! The versions a node image is built from when the user names only the
//! Kubernetes version, and where each one comes from.
//!
//! Every pin is copied from a kind release (its `images/base/Dockerfile` and
//! `pkg/build/nodeimage/defaults.go` at the release tag), so each combination
//! has shipped in a kindest/node image of that Kubernetes minor.

use std::fmt;

use crate::bootstrap::version::Version;
use crate::download::{Artifact, cni_plugins, crictl, kubernetes_binary};

use super::BuildError;

/// Kubernetes version built when `--kubernetes-version` is not given (the
/// default node image of kind v0.32.0).
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.36.1";

/// Base image when `--base-image` is not given: kind v0.32.0's
/// `DefaultBaseImage`. kind pins it by tag only (it dropped the digest in
/// 2023 because one digest cannot serve multi-arch builds), so no digest
/// traceable to a release exists; skiff records the base's image ID and
/// repo digest in the built image's labels instead. Pass
/// `--base-image kindest/base:TAG@sha256:…` to pin a digest yourself.
pub const DEFAULT_BASE_IMAGE: &str = "docker.io/kindest/base:v20260601-995e8fa5";

/// containerd and runc installed when the base image has none (kind v0.32.0).
pub const CONTAINERD_VERSION: &str = "v2.3.1";
pub const RUNC_VERSION: &str = "v1.4.2";

/// (Kubernetes minor, crictl, CNI plugins, kind release the pair is from),
/// newest first. A minor newer than the first row uses the first row:
/// crictl and the CNI plugins work across several Kubernetes releases.
const TOOL_PINS: &[(u64, &str, &str, &str)] = &[
    (36, "v1.36.0", "v1.9.1", "kind v0.32.0"),
    (35, "v1.33.0", "v1.8.0", "kind v0.31.0"),
    (34, "v1.33.0", "v1.7.1", "kind v0.30.0"),
    (33, "v1.33.0", "v1.7.1", "kind v0.29.0"),
    (32, "v1.32.0", "v1.6.1", "kind v0.27.0"),
    (31, "v1.30.0", "v1.5.1", "kind v0.25.0"),
    (30, "v1.29.0", "v1.4.1", "kind v0.23.0"),
    (29, "v1.28.0", "v1.3.0", "kind v0.22.0"),
    // Not from a kind release: the CNI plugins release Debian bookworm
    // packages (v1.1.1, which the offline tests serve from a mirror), and the
    // crictl release of 1.22. kind's images of that era shipped CNI plugins
    // v0.8/v0.9; v1.1.1 speaks the same CNI spec versions and more.
    (
        20,
        "v1.22.0",
        "v1.1.1",
        "skiff (CNI plugins as packaged by Debian bookworm)",
    ),
];

/// The oldest Kubernetes minor skiff builds images for: the oldest row of
/// the pin table, and the oldest release skiff bootstraps.
pub const MIN_BUILD_MINOR: u64 = 20;

/// A CPU architecture of node images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// Go's name, used in release URLs and image configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// From an engine's or image's architecture (`amd64`, `x86_64`, `arm64`,
    /// `aarch64`).
    pub fn from_engine(name: &str) -> Option<Arch> {
        match name {
            "amd64" | "x86_64" => Some(Arch::Amd64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything version-specific about one build.
#[derive(Debug, Clone)]
pub struct Pins {
    pub kubernetes: Version,
    pub crictl: &'static str,
    pub cni_plugins: &'static str,
    /// Where the crictl/CNI pair comes from (a kind release, usually).
    pub source: &'static str,
    /// Whether crictl goes into the image (`--without-crictl` leaves it out).
    pub with_crictl: bool,
}

impl Pins {
    /// Pins for a Kubernetes release version (`v1.36.1`, `1.36.1`,
    /// `v1.37.0-rc.1`); the patch number is required because it names the
    /// release to download.
    pub fn for_version(input: &str) -> Result<Pins, BuildError> {
        let invalid = |reason: String| BuildError::Version {
            input: input.trim().to_string(),
            reason,
        };
        let kubernetes = Version::parse(input).map_err(|e| invalid(e.to_string()))?;
        // Version::parse reads `v1.36` as v1.36.0; a build must not guess.
        let core = input.trim().split(['-', '+']).next().unwrap_or("");
        if core.split('.').count() != 3 {
            return Err(invalid(
                "give a full release version such as v1.36.1: the patch release names the \
                 files to download"
                    .into(),
            ));
        }
        if kubernetes.major() != 1 || kubernetes.minor() < MIN_BUILD_MINOR {
            return Err(invalid(format!(
                "skiff builds node images for Kubernetes v1.{MIN_BUILD_MINOR} and newer"
            )));
        }
        let (_, crictl, cni, source) = TOOL_PINS
            .iter()
            .find(|(minor, ..)| *minor <= kubernetes.minor())
            .copied()
            .expect("the minimum is the table's last row");
        Ok(Pins {
            kubernetes,
            crictl,
            cni_plugins: cni,
            source,
            with_crictl: true,
        })
    }

    /// The artifacts every build downloads, with where each goes.
    pub fn artifacts(&self, arch: Arch) -> Vec<(Artifact, Payload)> {
        let v = self.kubernetes.as_str();
        let a = arch.as_str();
        let mut out: Vec<(Artifact, Payload)> = ["kubeadm", "kubelet", "kubectl"]
            .into_iter()
            .map(|name| {
                (
                    kubernetes_binary(v, a, name),
                    Payload::Binary {
                        path: format!("usr/bin/{name}"),
                    },
                )
            })
            .collect();
        if self.with_crictl {
            out.push((
                crictl(self.crictl, a),
                Payload::Archive {
                    dir: "usr/local/bin",
                    required: &["crictl"],
                },
            ));
        }
        out.push((
            cni_plugins(self.cni_plugins, a),
            Payload::Archive {
                dir: "opt/cni/bin",
                // The plugins skiff's default CNI manifest uses.
                required: &["loopback", "host-local", "ptp", "portmap"],
            },
        ));
        out
    }
}

/// The containerd and runc release artifacts, for bases without them.
pub fn runtime_artifacts(arch: Arch) -> Vec<(Artifact, Payload)> {
    let a = arch.as_str();
    let c = CONTAINERD_VERSION;
    let c_bare = c.trim_start_matches('v');
    let containerd = format!(
        "https://github.com/containerd/containerd/releases/download/{c}/containerd-{c_bare}-linux-{a}.tar.gz"
    );
    let runc =
        format!("https://github.com/opencontainers/runc/releases/download/{RUNC_VERSION}/runc.{a}");
    vec![
        (
            Artifact::published(containerd.clone(), format!("{containerd}.sha256sum")),
            Payload::Archive {
                dir: "usr/local/bin",
                required: &["containerd", "containerd-shim-runc-v2", "ctr"],
            },
        ),
        (
            // One SHA256SUMS-style file lists every architecture's binary.
            Artifact::published(
                runc,
                format!(
                    "https://github.com/opencontainers/runc/releases/download/{RUNC_VERSION}/runc.sha256sum"
                ),
            ),
            Payload::Binary {
                path: "usr/local/sbin/runc".into(),
            },
        ),
    ]
}

/// How a downloaded file goes into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The file itself, executable, at `path` (relative to `/`).
    Binary { path: String },
    /// A gzip tarball whose executables go into `dir`, without the
    /// archive's directories (`bin/ctr` becomes `<dir>/ctr`); it must
    /// contain each of `required`. Other files (LICENSE, README) are skipped.
    Archive {
        dir: &'static str,
        required: &'static [&'static str],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_follow_the_kubernetes_minor() {
        let p = Pins::for_version("v1.36.1").unwrap();
        assert_eq!((p.crictl, p.cni_plugins), ("v1.36.0", "v1.9.1"));
        let p = Pins::for_version("1.33.4").unwrap();
        assert_eq!(p.kubernetes.as_str(), "v1.33.4");
        assert_eq!((p.crictl, p.cni_plugins), ("v1.33.0", "v1.7.1"));
        // Newer than the table: the newest row.
        let p = Pins::for_version("v1.37.0-rc.1").unwrap();
        assert_eq!(p.crictl, "v1.36.0");
        assert_eq!(p.kubernetes.as_str(), "v1.37.0-rc.1");
    }

    #[test]
    fn versions_must_name_a_release_skiff_can_build() {
        let e = Pins::for_version("v1.36").unwrap_err().to_string();
        assert!(e.contains("full release version"), "{e}");
        let e = Pins::for_version("v1.19.16").unwrap_err().to_string();
        assert!(e.contains("v1.20 and newer"), "{e}");
        let p = Pins::for_version("v1.20.2").unwrap();
        assert_eq!((p.crictl, p.cni_plugins), ("v1.22.0", "v1.1.1"));
        assert!(Pins::for_version("latest").is_err());
    }

    #[test]
    fn artifacts_use_the_official_release_locations() {
        let pins = Pins::for_version("v1.36.1").unwrap();
        let urls: Vec<String> = pins
            .artifacts(Arch::Arm64)
            .into_iter()
            .map(|(a, _)| a.url)
            .collect();
        assert_eq!(
            urls,
            [
                "https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubeadm",
                "https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubelet",
                "https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubectl",
                "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-arm64.tar.gz",
                "https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-arm64-v1.9.1.tgz",
            ]
        );
        let runtime: Vec<String> = runtime_artifacts(Arch::Amd64)
            .into_iter()
            .map(|(a, _)| format!("{} {:?}", a.url, a.sha256))
            .collect();
        assert_eq!(
            runtime[0],
            "https://github.com/containerd/containerd/releases/download/v2.3.1/containerd-2.3.1-linux-amd64.tar.gz \
             Published(\"https://github.com/containerd/containerd/releases/download/v2.3.1/containerd-2.3.1-linux-amd64.tar.gz.sha256sum\")"
        );
        assert!(runtime[1].starts_with(
            "https://github.com/opencontainers/runc/releases/download/v1.4.2/runc.amd64 "
        ));
    }

    #[test]
    fn crictl_can_be_left_out() {
        let mut pins = Pins::for_version("v1.20.2").unwrap();
        pins.with_crictl = false;
        let urls: Vec<String> = pins
            .artifacts(Arch::Amd64)
            .into_iter()
            .map(|(a, _)| a.url)
            .collect();
        assert_eq!(urls.len(), 4, "{urls:?}");
        assert!(!urls.iter().any(|u| u.contains("cri-tools")), "{urls:?}");
    }

    #[test]
    fn architectures_map_from_engine_names() {
        assert_eq!(Arch::from_engine("x86_64"), Some(Arch::Amd64));
        assert_eq!(Arch::from_engine("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::from_engine("s390x"), None);
    }
}
