//! `skiff dashboard`: how to reach the Dashboard from the host.
//!
//! The Dashboard serves HTTPS inside the cluster only. The way that works on
//! every engine (Linux, Docker Desktop, colima) without publishing another
//! port is the one upstream documents: `kubectl proxy` on the host, which
//! tunnels through the API server skiff already publishes, and a bearer token
//! for the login page. skiff prints both; it does not run a proxy itself.

use serde::Serialize;

use crate::error::Result;

use super::AddonError;
use super::kubectl::Kubectl;
use super::render::ADDON_LABEL;

/// Port `kubectl proxy` listens on by default.
pub const PROXY_PORT: u16 = 8001;
const NAMESPACE: &str = "kubernetes-dashboard";
const TOKEN_SECRET: &str = "skiff-admin-token";

/// What `skiff dashboard` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub url: String,
    pub proxy_command: String,
    /// The admin token, once the token controller has issued it.
    pub token: Option<String>,
}

/// The URL of the Dashboard through `kubectl proxy`.
pub fn proxy_url() -> String {
    format!(
        "http://127.0.0.1:{PROXY_PORT}/api/v1/namespaces/{NAMESPACE}/services/https:kubernetes-dashboard:/proxy/"
    )
}

/// Looks up the admin token and builds the access instructions.
pub async fn access(kubectl: &Kubectl<'_>, cluster: &str, enabled: bool) -> Result<Access> {
    if !enabled {
        return Err(AddonError::DashboardDisabled {
            cluster: cluster.to_string(),
        }
        .into());
    }
    let selector = format!("{ADDON_LABEL}=dashboard");
    let secrets = kubectl
        .list("secrets", Some(NAMESPACE), Some(&selector))
        .await?;
    let token = secrets
        .iter()
        .find(|s| s["metadata"]["name"] == TOKEN_SECRET)
        .and_then(|s| s["data"]["token"].as_str())
        .and_then(decode_base64)
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Ok(Access {
        url: proxy_url(),
        proxy_command: format!(
            "kubectl --context {} proxy --port={PROXY_PORT}",
            crate::kubeconfig::context_name(cluster)
        ),
        token,
    })
}

/// Standard base64 (Secret `data` values), ignoring whitespace.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("ZXlK\naGJH").unwrap(), b"eyJhbG");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a$b").is_none());
    }

    #[test]
    fn url_goes_through_the_api_server_proxy() {
        assert!(proxy_url().ends_with("/services/https:kubernetes-dashboard:/proxy/"));
    }
}
