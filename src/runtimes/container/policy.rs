//! Which images may run, decided before anything is pulled (protocol §6.5, with its prefix
//! bug fixed): a reference is split into registry, repository path and tag or digest, and an
//! allowlist entry matches whole path segments, so `ghcr.io/archipelag-io` allows
//! `ghcr.io/archipelag-io/llm-chat` and not `ghcr.io/archipelag-io-evil/x`.

use crate::config::RegistryConfig;

/// The allowlist used when `[registry].allowed` is empty.
pub const BUILT_IN: &[&str] = &["ghcr.io/archipelag-io", "docker.io/archipelag", "docker.io/library"];

/// An image reference, normalized as Docker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `docker.io`, `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// `library/busybox`, `archipelag-io/llm-chat`.
    pub path: String,
    /// The tag, when given (`latest` is not assumed here).
    pub tag: Option<String>,
    /// `sha256:…`, when pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `[registry/]path[:tag][@digest]`.
    ///
    /// # Errors
    /// An empty reference, an empty path segment, or characters Docker does not allow.
    pub fn parse(reference: &str) -> Result<ImageRef, String> {
        let r = reference.trim();
        let bad = |why: &str| format!("\"{r}\" is not an image reference: {why}");
        if r.is_empty() {
            return Err(bad("it is empty"));
        }
        let (rest, digest) = match r.split_once('@') {
            Some((rest, d)) if d.starts_with("sha256:") && d.len() == 71 => (rest, Some(d.to_string())),
            Some(_) => return Err(bad("the digest must be sha256: and 64 hex digits")),
            None => (r, None),
        };
        // A tag follows the last ':' unless a '/' comes after it (then it was a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        let segments: Vec<&str> = name.split('/').collect();
        let first_is_registry = segments.len() > 1 && (segments[0].contains(['.', ':']) || segments[0] == "localhost");
        let (registry, path_segments) = if first_is_registry {
            (segments[0].to_string(), &segments[1..])
        } else {
            ("docker.io".to_string(), &segments[..])
        };
        let mut path: Vec<&str> = path_segments.to_vec();
        if registry == "docker.io" && path.len() == 1 {
            path.insert(0, "library");
        }
        let segment_ok = |s: &str| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        };
        if !path.iter().all(|s| segment_ok(s)) {
            return Err(bad("path segments are lowercase letters, digits, '.', '_' and '-', none empty"));
        }
        if tag.as_deref().is_some_and(|t| t.is_empty() || t.len() > 128 || t.contains(['/', '@'])) {
            return Err(bad("the tag is empty or malformed"));
        }
        Ok(ImageRef { registry, path: path.join("/"), tag, digest })
    }

    /// `registry/path`, without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    /// Whether `entry` (`registry[/path…]`) covers this image, by whole segments.
    pub fn is_under(&self, entry: &str) -> bool {
        let Ok(entry) = ImageRef::parse_prefix(entry) else { return false };
        let mine: Vec<&str> = std::iter::once(self.registry.as_str()).chain(self.path.split('/')).collect();
        entry.len() <= mine.len() && entry.iter().zip(&mine).all(|(a, b)| a == b)
    }

    /// An allowlist entry's segments: `docker.io/library` → `[docker.io, library]`; a bare
    /// registry (`ghcr.io`) stands alone.
    fn parse_prefix(entry: &str) -> Result<Vec<&str>, ()> {
        let segments: Vec<&str> = entry.trim().trim_end_matches('/').split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(());
        }
        Ok(segments)
    }
}

/// Checks `reference` against `[registry]`: parsed, allowed, pinned when required.
///
/// # Errors
/// Why the image may not run, naming the setting that says so.
pub fn check(reference: &str, cfg: &RegistryConfig) -> Result<ImageRef, String> {
    let image = ImageRef::parse(reference)?;
    if !cfg.enabled {
        return Ok(image);
    }
    let allowed: Vec<&str> =
        if cfg.allowed.is_empty() { BUILT_IN.to_vec() } else { cfg.allowed.iter().map(String::as_str).collect() };
    if !allowed.iter().any(|entry| image.is_under(entry)) {
        return Err(format!(
            "image {reference} is not from an allowed registry ({}); see [registry].allowed",
            allowed.join(", ")
        ));
    }
    if cfg.require_digest && image.digest.is_none() {
        return Err(format!(
            "image {reference} is not pinned by digest (name@sha256:…), which [registry].require_digest demands"
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_as_docker_reads_them() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!((r.registry.as_str(), r.path.as_str(), r.tag), ("docker.io", "library/busybox", None));
        let r = ImageRef::parse("ghcr.io/archipelag-io/llm-chat:latest").unwrap();
        assert_eq!((r.repository(), r.tag.as_deref()), ("ghcr.io/archipelag-io/llm-chat".into(), Some("latest")));
        let r = ImageRef::parse("localhost:5000/island-test/echo:1").unwrap();
        assert_eq!((r.registry.as_str(), r.path.as_str()), ("localhost:5000", "island-test/echo"));
        let r = ImageRef::parse(&format!("archipelag/echo@{DIGEST}")).unwrap();
        assert_eq!((r.repository(), r.digest.as_deref()), ("docker.io/archipelag/echo".into(), Some(DIGEST)));
        for bad in ["", "UPPER/case", "a//b", "x@sha256:short", "x:"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_allowlist_matches_whole_segments() {
        let cfg = RegistryConfig::default();
        assert!(check("ghcr.io/archipelag-io/llm-chat:latest", &cfg).is_ok());
        assert!(check("busybox", &cfg).is_ok(), "docker.io/library is built in");
        let evil = check("ghcr.io/archipelag-io-evil/x", &cfg).unwrap_err();
        assert!(evil.contains("not from an allowed registry") && evil.contains("[registry].allowed"), "{evil}");
        assert!(check("ghcr.io/archipelag-iox", &cfg).is_err());
        assert!(check("docker.io/archipelagx/y", &cfg).is_err());
        let own = RegistryConfig { allowed: vec!["localhost:5000/island-test".into()], ..cfg.clone() };
        assert!(check("localhost:5000/island-test/echo:1", &own).is_ok());
        assert!(check("localhost:5000/island-testing/echo", &own).is_err());
        assert!(check("busybox", &own).is_err(), "a configured list replaces the built-ins");
        let open = RegistryConfig { enabled: false, ..cfg };
        assert!(check("ghcr.io/archipelag-io-evil/x", &open).is_ok());
    }

    #[test]
    fn require_digest_demands_a_pinned_reference() {
        let cfg = RegistryConfig { require_digest: true, ..RegistryConfig::default() };
        assert!(check("ghcr.io/archipelag-io/llm-chat:latest", &cfg).unwrap_err().contains("require_digest"));
        assert!(check(&format!("ghcr.io/archipelag-io/llm-chat@{DIGEST}"), &cfg).is_ok());
    }
}
