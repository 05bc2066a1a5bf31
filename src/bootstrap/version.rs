//! Kubernetes versions as found in a node image, and what they imply for
//! bootstrapping.
//!
//! A kindest/node image records the Kubernetes version it carries in
//! `/kind/version` (for example `v1.36.1`, or `v1.35.0-alpha.1.42+0123abcd`
//! for a CI build). Skiff reads that file and parses it with
//! [`Version::parse`]; everything version-dependent in the rendered kubeadm
//! configuration is decided from the result:
//!
//! * which kubeadm configuration API to speak ([`KubeadmApi::for_version`]):
//!   `kubeadm.k8s.io/v1beta2` for Kubernetes 1.20 to 1.22, `v1beta3` up to
//!   1.35, `v1beta4` from 1.36;
//! * which cgroup driver the kubelet uses (`cgroupfs` before 1.24, `systemd`
//!   from 1.24, matching how kindest/node images configure containerd);
//! * whether kube-proxy's nftables mode needs its feature gate (1.29, 1.30).
//!
//! Version-dependent decisions compare only major and minor: every patch
//! release and every pre-release of a minor speaks the same configuration
//! API, and v1beta4 exists since kubeadm 1.31, so a 1.36 pre-release can use
//! it safely.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::render::RenderError;

/// The oldest Kubernetes minor release skiff can bootstrap.
///
/// 1.20 is the oldest release whose kubeadm reads `v1beta2` the way skiff
/// renders it and whose kubelet talks to containerd over CRI v1alpha2
/// (containerd 1.6 still serves it; containerd 2.x does not, so such old
/// images must carry containerd 1.6 or older). It is also the release skiff's
/// own real-Kubernetes tests run (built from Debian's source package), so the
/// floor is the oldest version that is actually exercised.
pub const MIN_SUPPORTED: (u64, u64) = (1, 20);

/// A node image skiff suggests when the one in use is too old.
pub const SUGGESTED_IMAGE: &str = "kindest/node:v1.36.1";

/// A parsed Kubernetes version.
///
/// Keeps the text it was parsed from (without surrounding whitespace and
/// with a leading `v`), because that exact text is what kubeadm must be
/// given as `kubernetesVersion`: CI builds are only identified by their
/// full pre-release and build suffix.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
    build: Option<String>,
    text: String,
}

impl Version {
    /// Parses `v1.36.1`, `1.36.1`, `v1.35.0-alpha.1`, `v1.35.0-alpha.1.42+0123abcd`
    /// and the like. Surrounding whitespace (the trailing newline of
    /// `/kind/version`) is ignored. A missing patch number (`v1.36`) is
    /// accepted as `.0`.
    pub fn parse(input: &str) -> Result<Version, RenderError> {
        let invalid = |reason: &str| RenderError::InvalidVersion {
            input: input.trim().to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let body = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let (body, build) = match body.split_once('+') {
            Some((b, meta)) => {
                if meta.is_empty() || !meta.split('.').all(is_identifier) {
                    return Err(invalid("the build metadata after '+' is malformed"));
                }
                (b, Some(meta.to_string()))
            }
            None => (body, None),
        };
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) => {
                if p.is_empty() || !p.split('.').all(is_identifier) {
                    return Err(invalid("the pre-release part after '-' is malformed"));
                }
                (c, p.split('.').map(str::to_string).collect())
            }
            None => (body, Vec::new()),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() < 2 || numbers.len() > 3 {
            return Err(invalid("expected MAJOR.MINOR.PATCH, like v1.36.1"));
        }
        let mut parsed = [0u64; 3];
        for (slot, part) in parsed.iter_mut().zip(&numbers) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("expected MAJOR.MINOR.PATCH, like v1.36.1"));
            }
            *slot = part
                .parse()
                .map_err(|_| invalid("a version number is too large"))?;
        }
        let [major, minor, patch] = parsed;
        let mut text = format!("v{major}.{minor}.{patch}");
        if numbers.len() == 3 {
            // Keep the original spelling of the numbers and suffixes.
            text = format!("v{body}");
            if let Some(meta) = &build {
                text.push('+');
                text.push_str(meta);
            }
        } else {
            if !pre.is_empty() {
                text.push('-');
                text.push_str(&pre.join("."));
            }
            if let Some(meta) = &build {
                text.push('+');
                text.push_str(meta);
            }
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
            text,
        })
    }

    /// Builds a release version (no pre-release, no build metadata).
    pub fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: Vec::new(),
            build: None,
            text: format!("v{major}.{minor}.{patch}"),
        }
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// Pre-release identifiers (`["alpha", "1", "42"]` for `-alpha.1.42`).
    pub fn pre_release(&self) -> &[String] {
        &self.pre
    }

    /// Build metadata after `+`, if any.
    pub fn build_metadata(&self) -> Option<&str> {
        self.build.as_deref()
    }

    /// True for `-alpha`, `-beta`, `-rc` and CI builds.
    pub fn is_pre_release(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The version as kubeadm should be told it, always with a leading `v`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when this version's major.minor is at least `major.minor`,
    /// whatever its patch or pre-release (see the module docs for why).
    pub fn minor_at_least(&self, major: u64, minor: u64) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

fn is_identifier(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl FromStr for Version {
    type Err = RenderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Semantic-versioning precedence: build metadata is ignored, a pre-release
/// sorts before its release, numeric identifiers compare numerically.
impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

fn compare_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(nx), Ok(ny)) => nx.cmp(&ny),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// The kubeadm configuration API version skiff renders for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    /// `kubeadm.k8s.io/v1beta2` (Kubernetes 1.20 to 1.22): flags are maps,
    /// and there is no `skipPhases` field, so phases are skipped on the
    /// command line.
    V1Beta2,
    /// `kubeadm.k8s.io/v1beta3`: component flags are `name: value` maps.
    V1Beta3,
    /// `kubeadm.k8s.io/v1beta4`: component flags are lists of `{name, value}`.
    V1Beta4,
}

impl KubeadmApi {
    /// Picks the API for a Kubernetes version: v1beta2 for 1.20 to 1.22,
    /// v1beta3 for 1.23 to 1.35, v1beta4 from 1.36 (the same split kind
    /// makes). Versions older than
    /// [`MIN_SUPPORTED`] are refused with an error that names a usable image.
    pub fn for_version(version: &Version) -> Result<KubeadmApi, RenderError> {
        if version.major() > 1 {
            return Err(RenderError::UnsupportedMajor {
                version: version.to_string(),
            });
        }
        if !version.minor_at_least(MIN_SUPPORTED.0, MIN_SUPPORTED.1) {
            return Err(RenderError::UnsupportedVersion {
                version: version.to_string(),
            });
        }
        if version.minor_at_least(1, 36) {
            Ok(KubeadmApi::V1Beta4)
        } else if version.minor_at_least(1, 23) {
            Ok(KubeadmApi::V1Beta3)
        } else {
            Ok(KubeadmApi::V1Beta2)
        }
    }

    /// The `apiVersion` of the kubeadm documents.
    pub fn api_version(self) -> &'static str {
        match self {
            KubeadmApi::V1Beta2 => "kubeadm.k8s.io/v1beta2",
            KubeadmApi::V1Beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1Beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }

    /// Whether `extraArgs` / `kubeletExtraArgs` are lists of `{name, value}`
    /// (true) or string maps (false).
    pub fn list_args(self) -> bool {
        matches!(self, KubeadmApi::V1Beta4)
    }

    /// Whether Init/JoinConfiguration have `skipPhases`. kubeadm reads that
    /// field only when `--skip-phases` is not on the command line, so skiff
    /// uses one or the other, never both.
    pub fn has_skip_phases(self) -> bool {
        !matches!(self, KubeadmApi::V1Beta2)
    }
}

impl fmt::Display for KubeadmApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_release_versions() {
        let ver = v("v1.36.1");
        assert_eq!((ver.major(), ver.minor(), ver.patch()), (1, 36, 1));
        assert!(!ver.is_pre_release());
        assert_eq!(ver.as_str(), "v1.36.1");
        assert_eq!(ver.build_metadata(), None);
    }

    #[test]
    fn trims_whitespace_and_accepts_missing_v() {
        assert_eq!(v("  v1.30.2\n").as_str(), "v1.30.2");
        assert_eq!(v("1.30.2").as_str(), "v1.30.2");
        assert_eq!(v("1.30.2").to_string(), "v1.30.2");
    }

    #[test]
    fn accepts_missing_patch() {
        let ver = v("v1.36");
        assert_eq!(ver.patch(), 0);
        assert_eq!(ver.as_str(), "v1.36.0");
    }

    #[test]
    fn parses_pre_release_and_build_metadata() {
        let ver = v("v1.35.0-alpha.1+abc");
        assert_eq!(ver.pre_release(), ["alpha", "1"]);
        assert_eq!(ver.build_metadata(), Some("abc"));
        assert!(ver.is_pre_release());
        // The full text is kept for kubeadm's kubernetesVersion.
        assert_eq!(ver.as_str(), "v1.35.0-alpha.1+abc");

        let ci = v("v1.36.0-beta.0.123+0123456789abcd");
        assert_eq!(ci.pre_release(), ["beta", "0", "123"]);
        assert_eq!(ci.as_str(), "v1.36.0-beta.0.123+0123456789abcd");
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in [
            "",
            "   ",
            "v",
            "v1",
            "vx.y.z",
            "v1.x.0",
            "v1..0",
            "v1.2.3.4",
            "v1.2.3-",
            "v1.2.3+",
            "v1.2.3-al pha",
            "v1.2.3-a..b",
            "v-1.2.3",
            "v1.2.3 v1.2.4",
            "latest",
            "v99999999999999999999.1.0",
        ] {
            let err = Version::parse(bad).expect_err(bad);
            assert!(
                matches!(err, RenderError::InvalidVersion { .. }),
                "{bad}: {err:?}"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn orders_by_semver_precedence() {
        assert!(v("v1.35.9") < v("v1.36.0"));
        assert!(v("v1.36.0-alpha.1") < v("v1.36.0"));
        assert!(v("v1.36.0-alpha.2") < v("v1.36.0-alpha.10"));
        assert!(v("v1.36.0-alpha.1") < v("v1.36.0-beta.0"));
        assert!(v("v1.36.0-alpha") < v("v1.36.0-alpha.1"));
        assert_eq!(v("v1.36.0+a"), v("v1.36.0+b"));
        assert!(v("v1.9.0") < v("v1.10.0"));
    }

    #[test]
    fn picks_kubeadm_api_by_minor() {
        assert_eq!(
            KubeadmApi::for_version(&v("v1.20.2")).unwrap(),
            KubeadmApi::V1Beta2
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.22.17")).unwrap(),
            KubeadmApi::V1Beta2
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.23.0")).unwrap(),
            KubeadmApi::V1Beta3
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.23.0-alpha.0")).unwrap(),
            KubeadmApi::V1Beta3
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.35.4")).unwrap(),
            KubeadmApi::V1Beta3
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.36.0")).unwrap(),
            KubeadmApi::V1Beta4
        );
        // Pre-releases of 1.36 already speak v1beta4 (supported since 1.31).
        assert_eq!(
            KubeadmApi::for_version(&v("v1.36.0-alpha.1")).unwrap(),
            KubeadmApi::V1Beta4
        );
        assert_eq!(
            KubeadmApi::for_version(&v("v1.40.2")).unwrap(),
            KubeadmApi::V1Beta4
        );
        assert_eq!(KubeadmApi::V1Beta4.api_version(), "kubeadm.k8s.io/v1beta4");
        assert_eq!(KubeadmApi::V1Beta3.to_string(), "kubeadm.k8s.io/v1beta3");
        assert!(KubeadmApi::V1Beta4.list_args());
        assert!(!KubeadmApi::V1Beta3.list_args());
        assert!(!KubeadmApi::V1Beta2.list_args());
        assert!(!KubeadmApi::V1Beta2.has_skip_phases());
        assert!(KubeadmApi::V1Beta3.has_skip_phases());
        assert_eq!(KubeadmApi::V1Beta2.api_version(), "kubeadm.k8s.io/v1beta2");
    }

    #[test]
    fn refuses_versions_below_1_20() {
        let err = KubeadmApi::for_version(&v("v1.19.16")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Kubernetes v1.19.16 is older than the oldest version skiff supports (v1.20): \
             use a newer node image, e.g. --image kindest/node:v1.36.1"
        );
        assert!(err.hint().contains("kindest/node"));
        assert!(KubeadmApi::for_version(&v("v1.0.0")).is_err());
        assert!(KubeadmApi::for_version(&v("v0.36.0")).is_err());
        let err = KubeadmApi::for_version(&v("v2.0.0")).unwrap_err();
        assert!(
            matches!(err, RenderError::UnsupportedMajor { .. }),
            "{err:?}"
        );
    }
}
