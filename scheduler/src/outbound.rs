//! Which outgoing HTTP requests a component may make: the `allowed_hosts` of its link to an
//! http-client capability (wasmCloud v2's key), with Spin's `allowed_outbound_hosts` meaning —
//! `scheme://host[:port]`, where the scheme may be `*`, the host `*` or `*.domain` (which does
//! not match `domain` itself), and the port `*`; no port means the scheme's default. Entries are
//! separated by commas or whitespace. Pure: the runtime applies it to each request.

/// One entry of an allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `None`: any scheme.
    scheme: Option<String>,
    host: HostPattern,
    /// `None`: any port.
    port: Option<u16>,
    /// As written, for messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: subdomains of `example.com`, not itself.
    SubdomainsOf(String),
    Exact(String),
}

/// The default port of a scheme.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<AllowedHost, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "`{text}` has no scheme: write http://HOST, https://HOST or *://HOST"
            ));
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => {
                return Err(format!(
                    "`{text}`: the scheme `{other}` is not http, https or *"
                ))
            }
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') {
            return Err(format!("`{text}`: give a host and port, not a path"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
            _ => (authority, None),
        };
        let port = match port {
            None => match &scheme {
                Some(s) => default_port(s),
                None => None,
            },
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("`{text}`: `{p}` is not a port"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::SubdomainsOf(domain.to_string())
        } else if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{text}`: `{host}` is not a host, `*` or `*.domain`"
            ));
        } else {
            HostPattern::Exact(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            )
        };
        Ok(AllowedHost {
            scheme,
            host,
            port,
            text: text.to_string(),
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => h == host,
                HostPattern::SubdomainsOf(d) => host
                    .strip_suffix(d.as_str())
                    .is_some_and(|prefix| prefix.ends_with('.')),
            }
    }
}

/// Parses an `allowed_hosts` value: every entry, or the first problem.
pub fn parse_allowed_hosts(value: &str) -> Result<Vec<AllowedHost>, String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(AllowedHost::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_as_spin_documents_them() {
        let list = parse_allowed_hosts(
            "https://api.example.com, http://127.0.0.1:8080 https://*.example.org",
        )
        .unwrap();
        let allowed = |s, h, p| list.iter().any(|e| e.allows(s, h, p));
        assert!(allowed("https", "api.example.com", 443));
        assert!(!allowed("http", "api.example.com", 80), "scheme counts");
        assert!(
            !allowed("https", "api.example.com", 8443),
            "no port means the default"
        );
        assert!(allowed("http", "127.0.0.1", 8080));
        assert!(!allowed("http", "127.0.0.1", 8081));
        assert!(allowed("https", "a.example.org", 443));
        assert!(
            !allowed("https", "example.org", 443),
            "*.domain is not the domain"
        );
        assert!(!allowed("https", "badexample.org", 443));
        let any = parse_allowed_hosts("*://*:*").unwrap();
        assert!(any[0].allows("http", "anything", 1));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(parse_allowed_hosts("example.com")
            .unwrap_err()
            .contains("no scheme"));
        assert!(parse_allowed_hosts("ftp://example.com")
            .unwrap_err()
            .contains("ftp"));
        assert!(parse_allowed_hosts("http://example.com:http")
            .unwrap_err()
            .contains("not a port"));
        assert!(parse_allowed_hosts("http://ex*ample.com")
            .unwrap_err()
            .contains("not a host"));
    }
}
