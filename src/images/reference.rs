//! Image references as containerd names them.
//!
//! Docker shows `foo` and `user/app:1`; containerd stores the same images as
//! `docker.io/library/foo:latest` and `docker.io/user/app:1`. Deciding whether
//! a node already holds an image means comparing in containerd's spelling, so
//! every name skiff compares goes through [`normalize`] first.

/// The registry Docker assumes for names without one.
const DEFAULT_DOMAIN: &str = "docker.io";

/// Returns the fully qualified form of a reference: `foo` →
/// `docker.io/library/foo:latest`, `localhost:5000/x` → `localhost:5000/x:latest`.
/// A digest reference keeps its digest and gets no default tag.
pub fn normalize(reference: &str) -> String {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    // A tag is a colon after the last slash; a colon before it is a port.
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    let name = qualify(name);
    match (tag, digest) {
        (Some(tag), Some(digest)) => format!("{name}:{tag}@{digest}"),
        (None, Some(digest)) => format!("{name}@{digest}"),
        (Some(tag), None) => format!("{name}:{tag}"),
        (None, None) => format!("{name}:latest"),
    }
}

/// Adds the registry (and `library/` for official images) Docker implies.
fn qualify(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_domain = first.contains('.') || first.contains(':') || first == "localhost";
    match rest {
        Some(rest) if is_domain => {
            if (first == DEFAULT_DOMAIN || first == "index.docker.io") && !rest.contains('/') {
                format!("{DEFAULT_DOMAIN}/library/{rest}")
            } else if first == "index.docker.io" {
                format!("{DEFAULT_DOMAIN}/{rest}")
            } else {
                name.to_string()
            }
        }
        Some(_) => format!("{DEFAULT_DOMAIN}/{name}"),
        None => format!("{DEFAULT_DOMAIN}/library/{name}"),
    }
}

/// Whether `s` looks like an image ID or ID prefix rather than a name:
/// `sha256:…`, or 12 to 64 lowercase hex digits (which Docker resolves as an ID first).
pub fn is_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (12..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The short name Docker users know, for messages: `docker.io/library/foo:1` → `foo:1`.
pub fn familiar(reference: &str) -> String {
    let short = reference.strip_prefix("docker.io/").unwrap_or(reference);
    short.strip_prefix("library/").unwrap_or(short).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalize_like_docker() {
        let cases = [
            ("foo", "docker.io/library/foo:latest"),
            ("foo:1.2", "docker.io/library/foo:1.2"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/foo:2", "docker.io/library/foo:2"),
            ("index.docker.io/user/app:3", "docker.io/user/app:3"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:dev", "localhost:5000/app:dev"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("ghcr.io/a/b/c", "ghcr.io/a/b/c:latest"),
            ("foo@sha256:abc", "docker.io/library/foo@sha256:abc"),
            ("foo:1@sha256:abc", "docker.io/library/foo:1@sha256:abc"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
    }

    #[test]
    fn ids_are_told_from_names() {
        assert!(is_id("5fd704d8c6e6"));
        assert!(is_id(
            "sha256:5fd704d8c6e608c9b8f08442c69612090e6c3650ba9086ea44d6bbf80dc8a890"
        ));
        assert!(!is_id("foo"));
        assert!(!is_id("deadbeef"), "too short to be taken as an ID");
        assert!(!is_id("5fd704d8c6e6:latest"));
    }

    #[test]
    fn familiar_names_drop_the_defaults() {
        assert_eq!(familiar("docker.io/library/foo:1"), "foo:1");
        assert_eq!(familiar("docker.io/user/app:1"), "user/app:1");
        assert_eq!(familiar("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
    }
}
