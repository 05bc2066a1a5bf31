//! What kind of engine skiff talks to, and what it can do.
//!
//! Node containers depend on facts only the engine knows: whether it is
//! Docker or Podman (network options, the `/var` volume, `container=`),
//! whether it runs rootless (`/dev/fuse`, the kubelet's user-namespace gate),
//! which cgroup version and storage driver the host has, the MTU of its
//! default bridge. They come from the engine's own `/info` and `/version`
//! answers (and, for the MTU, the default bridge network), read once per
//! create. The parsing is pure and tested against answers recorded from real
//! engines (`src/engine/testdata/`).

use std::collections::HashMap;

use bollard::models::{NetworkInspect, SystemInfo, SystemVersion};

/// Which engine implementation answers the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    #[default]
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

/// Facts about the engine that change how networks and nodes are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineTraits {
    pub flavor: Flavor,
    pub cgroup_v2: bool,
    /// Rootless Docker or rootless Podman: the engine itself runs in a user
    /// namespace, so nodes cannot get real root's powers.
    pub rootless: bool,
    /// dockerd runs with `userns-remap`.
    pub userns_remap: bool,
    /// The storage sits on btrfs, ZFS, XFS or device-mapper: the kubelet
    /// (cAdvisor) then looks up the backing block devices under `/dev/mapper`.
    pub dev_mapper: bool,
    /// MTU of the engine's default bridge, when it sets one; the cluster
    /// network uses the same, so nodes behind a VPN or a cloud's 1450-byte
    /// network do not drop large packets.
    pub mtu: Option<u32>,
}

/// The engine's traits from its `/info` and `/version` answers.
/// `rootless_field` is the top-level `Rootless` boolean of the raw `/info`
/// answer, which Podman sends and bollard's typed model drops.
pub fn traits_from_answers(
    info: &SystemInfo,
    version: &SystemVersion,
    rootless_field: Option<bool>,
) -> EngineTraits {
    let flavor = flavor(version);
    let security = security_options(info);
    let rootless = security.iter().any(|o| o == "name=rootless") || rootless_field == Some(true);
    EngineTraits {
        flavor,
        cgroup_v2: info
            .cgroup_version
            .as_ref()
            .is_some_and(|v| v.to_string() == "2"),
        rootless,
        userns_remap: security.iter().any(|o| o == "name=userns"),
        // Rootless engines cannot create device nodes: kind skips the mount.
        dev_mapper: !rootless && storage_needs_dev_mapper(info),
        mtu: None,
    }
}

/// Podman names its component "Podman Engine"; Docker's is "Engine".
pub fn flavor(version: &SystemVersion) -> Flavor {
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    if podman {
        Flavor::Podman
    } else {
        Flavor::Docker
    }
}

/// Every `name=…` item of `SecurityOptions`. Each option is a comma-separated
/// list like `name=seccomp,profile=default`; only the `name=` items matter.
fn security_options(info: &SystemInfo) -> Vec<String> {
    info.security_options
        .iter()
        .flatten()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|o| o.starts_with("name="))
        .map(str::to_string)
        .collect()
}

/// kind's rule: the storage driver is btrfs, ZFS or devicemapper, or the
/// driver's backing filesystem is btrfs, ZFS or XFS.
fn storage_needs_dev_mapper(info: &SystemInfo) -> bool {
    let driver = info.driver.as_deref().unwrap_or_default().to_lowercase();
    if matches!(driver.as_str(), "btrfs" | "zfs" | "devicemapper") {
        return true;
    }
    let backing = info
        .driver_status
        .iter()
        .flatten()
        .find(|pair| pair.first().map(String::as_str) == Some("Backing Filesystem"))
        .and_then(|pair| pair.get(1))
        .map(|fs| fs.to_lowercase());
    matches!(backing.as_deref(), Some("btrfs" | "zfs" | "xfs"))
}

/// `com.docker.network.driver.mtu` of the default bridge network, when set.
pub fn bridge_mtu(network: &NetworkInspect) -> Option<u32> {
    network
        .options
        .as_ref()?
        .get("com.docker.network.driver.mtu")?
        .trim()
        .parse()
        .ok()
        .filter(|mtu| *mtu > 0)
}

/// The top-level `Rootless` field of a raw `/info` answer (Podman's).
pub fn rootless_field(info_json: &str) -> Option<bool> {
    serde_json::from_str::<serde_json::Value>(info_json)
        .ok()?
        .get("Rootless")?
        .as_bool()
}

/// Driver options for the cluster's bridge network. Docker's bridge driver
/// takes masquerading and the MTU as options; Podman's netavark rejects
/// Docker's option names (it masquerades bridge networks by default), so it
/// gets none.
pub fn network_options(traits: &EngineTraits) -> HashMap<String, String> {
    let mut options = HashMap::new();
    if traits.flavor == Flavor::Docker {
        // Masquerade so nodes reach the outside world like on the default bridge.
        options.insert(
            "com.docker.network.bridge.enable_ip_masquerade".to_string(),
            "true".to_string(),
        );
        if let Some(mtu) = traits.mtu {
            options.insert("com.docker.network.driver.mtu".to_string(), mtu.to_string());
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers recorded from real engines on the development machine (Docker
    /// 20.10 rootful and rootless via dockerd-rootless.sh, Podman 4.3 rootful
    /// and rootless via `podman system service`), as `curl --unix-socket`
    /// received them.
    fn recorded(name: &str) -> EngineTraits {
        let (info, version) = match name {
            "docker-rootful" => (
                include_str!("testdata/docker-rootful-info.json"),
                include_str!("testdata/docker-rootful-version.json"),
            ),
            "docker-rootless" => (
                include_str!("testdata/docker-rootless-info.json"),
                include_str!("testdata/docker-rootless-version.json"),
            ),
            "podman-rootful" => (
                include_str!("testdata/podman-rootful-info.json"),
                include_str!("testdata/podman-rootful-version.json"),
            ),
            "podman-rootless" => (
                include_str!("testdata/podman-rootless-info.json"),
                include_str!("testdata/podman-rootless-version.json"),
            ),
            other => panic!("no recording {other}"),
        };
        // Parsed exactly as bollard parses the live answers.
        let typed_info: SystemInfo = serde_json::from_str(info).unwrap();
        let typed_version: SystemVersion = serde_json::from_str(version).unwrap();
        traits_from_answers(&typed_info, &typed_version, rootless_field(info))
    }

    #[test]
    fn rootful_docker() {
        let t = recorded("docker-rootful");
        assert_eq!(t.flavor, Flavor::Docker);
        assert!(!t.rootless);
        assert!(!t.cgroup_v2);
        assert!(!t.userns_remap);
        // overlay2 on ext4.
        assert!(!t.dev_mapper);
    }

    #[test]
    fn rootless_docker_is_detected_from_security_options() {
        let t = recorded("docker-rootless");
        assert_eq!(t.flavor, Flavor::Docker);
        assert!(t.rootless);
        assert!(!t.dev_mapper);
    }

    #[test]
    fn podman_is_detected_and_its_rootless_field_read() {
        let rootful = recorded("podman-rootful");
        assert_eq!(rootful.flavor, Flavor::Podman);
        assert!(!rootful.rootless);
        // Podman 4.3 does not list name=rootless in SecurityOptions: only
        // its own top-level field tells.
        let rootless = recorded("podman-rootless");
        assert_eq!(rootless.flavor, Flavor::Podman);
        assert!(rootless.rootless);
        let info: SystemInfo =
            serde_json::from_str(include_str!("testdata/podman-rootless-info.json")).unwrap();
        let version: SystemVersion =
            serde_json::from_str(include_str!("testdata/podman-rootless-version.json")).unwrap();
        assert!(!traits_from_answers(&info, &version, None).rootless);
    }

    #[test]
    fn storage_on_btrfs_zfs_xfs_or_devicemapper_needs_dev_mapper() {
        let info_with = |driver: &str, backing: &str| SystemInfo {
            driver: Some(driver.into()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), backing.into()]]),
            ..Default::default()
        };
        let version = SystemVersion::default();
        for (driver, backing, expected) in [
            ("overlay2", "extfs", false),
            ("overlay2", "xfs", true),
            ("overlay2", "btrfs", true),
            ("btrfs", "", true),
            ("zfs", "", true),
            ("devicemapper", "", true),
            ("vfs", "", false),
        ] {
            let t = traits_from_answers(&info_with(driver, backing), &version, None);
            assert_eq!(t.dev_mapper, expected, "{driver} on {backing}");
        }
        // Rootless engines cannot use host device nodes.
        let mut rootless = info_with("btrfs", "");
        rootless.security_options = Some(vec!["name=rootless".into()]);
        assert!(!traits_from_answers(&rootless, &version, None).dev_mapper);
    }

    #[test]
    fn userns_remap_and_cgroup_v2() {
        let info = SystemInfo {
            security_options: Some(vec![
                "name=apparmor".into(),
                "name=seccomp,profile=builtin".into(),
                "name=userns".into(),
                "name=cgroupns".into(),
            ]),
            cgroup_version: Some(bollard::models::SystemInfoCgroupVersionEnum::_2),
            ..Default::default()
        };
        let t = traits_from_answers(&info, &SystemVersion::default(), None);
        assert!(t.userns_remap);
        assert!(t.cgroup_v2);
        assert!(!t.rootless);
    }

    #[test]
    fn mtu_comes_from_the_default_bridge() {
        let bridge: NetworkInspect =
            serde_json::from_str(include_str!("testdata/docker-bridge-network.json")).unwrap();
        assert_eq!(bridge_mtu(&bridge), Some(1500));
        let mut cloud = bridge.clone();
        cloud
            .options
            .as_mut()
            .unwrap()
            .insert("com.docker.network.driver.mtu".into(), "1450".into());
        assert_eq!(bridge_mtu(&cloud), Some(1450));
        assert_eq!(bridge_mtu(&NetworkInspect::default()), None);
    }

    #[test]
    fn network_options_depend_on_the_engine() {
        let docker = EngineTraits {
            mtu: Some(1450),
            ..Default::default()
        };
        let options = network_options(&docker);
        assert_eq!(
            options["com.docker.network.bridge.enable_ip_masquerade"],
            "true"
        );
        assert_eq!(options["com.docker.network.driver.mtu"], "1450");
        assert!(
            !network_options(&EngineTraits::default())
                .contains_key("com.docker.network.driver.mtu")
        );
        let podman = EngineTraits {
            flavor: Flavor::Podman,
            mtu: Some(1450),
            ..Default::default()
        };
        assert!(network_options(&podman).is_empty());
    }
}
