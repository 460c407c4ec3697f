//! Who a request speaks for: the token it names, under the rules of the transport it came in on.
//!
//! On the Unix socket the kernel has already vouched for the peer (`SO_PEERCRED`, checked on
//! accept): the request runs under the token its `Authorization: Bearer` header names, or
//! `default`. Over loopback TCP nobody has vouched for anyone — any local user, or a web page
//! that rebinds a DNS name to 127.0.0.1, can connect — so every route needs a token that was
//! minted over the Unix socket, and the `Host` header must be a loopback name or address.
//! A token header that is not well formed is a 400 whatever its bytes, never `default`.

use std::net::{Ipv4Addr, Ipv6Addr};

use hyper::header::{AUTHORIZATION, HOST};
use hyper::{HeaderMap, StatusCode, Uri};

use super::Transport;
use super::error::ApiError;
use crate::api::{self, ErrorKind};
use crate::sessions::{Registry, token};

/// The token a request runs under, or the answer that refuses it.
///
/// Over TCP this applies to every route, `/health` included: TCP is for a process the user
/// handed a minted token, and nothing there answers anyone else (a rebinding page or another
/// user learns neither the version nor the pid, and cannot probe which routes exist).
pub fn identify(
    registry: &Registry,
    transport: Transport,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    if transport == Transport::Tcp {
        check_host(uri, headers)?;
    }
    let named = bearer_token(headers)?;
    match transport {
        Transport::Unix => Ok(named.unwrap_or_else(|| api::DEFAULT_TOKEN.to_string())),
        Transport::Tcp => match named {
            Some(token) if registry.is_minted(&token) => Ok(token),
            named => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::UnknownToken,
                if named.is_some() {
                    "over TCP only tokens minted by `snowflaked session new` are accepted"
                } else {
                    "over TCP every request needs `Authorization: Bearer <token>` with a token minted by `snowflaked session new`"
                },
            )
            .with_hint("mint one over the Unix socket: `snowflaked session new`")),
        },
    }
}

/// The token an `Authorization: Bearer <token>` header names; `None` without the header.
fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "more than one Authorization header; send one `Bearer <token>`",
        ));
    }
    let malformed = || {
        ApiError::bad_request(format!(
            "malformed token: 1-{} characters of letters, digits, '_', '-' and '.'",
            token::MAX_TOKEN_LEN
        ))
    };
    // Non-ASCII bytes (`tökén`, a raw 0xff) fail here rather than read as no header at all.
    let value = value.to_str().map_err(|_| malformed())?;
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(ApiError::bad_request(
                "the Authorization header must be `Bearer <token>`",
            ));
        }
    };
    if !token::is_well_formed(token) {
        return Err(malformed());
    }
    Ok(Some(token.to_string()))
}

/// Refuses a TCP request whose `Host` (or absolute request URI) is not a loopback name or
/// address: a browser that was made to resolve an attacker's name to 127.0.0.1 still sends
/// that name, so DNS rebinding ends here.
fn check_host(uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut hosts = headers.get_all(HOST).iter();
    let refuse = |got: &str| {
        let mut got = got.to_string();
        got.truncate(64);
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            ErrorKind::ForeignHost,
            format!(
                "over TCP the Host header must be a loopback name or address (localhost, 127.0.0.1, [::1]); got {got}"
            ),
        )
    };
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host
            .to_str()
            .map_err(|_| refuse("a value that is not ASCII"))?,
        (None, _) => return Err(refuse("none")),
        (Some(_), Some(_)) => return Err(refuse("more than one")),
    };
    if !is_loopback_host(host) {
        return Err(refuse(host));
    }
    if let Some(authority) = uri.authority()
        && !is_loopback_host(authority.as_str())
    {
        return Err(refuse(authority.as_str()));
    }
    Ok(())
}

/// `localhost`, an address in 127.0.0.0/8 or `[::1]`, each with an optional port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        let Ok(address) = address.parse::<Ipv6Addr>() else {
            return false;
        };
        let loopback =
            address.is_loopback() || address.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
        if !loopback {
            return false;
        }
        ("", port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    let name_ok = name.is_empty() && host.starts_with('[')
        || name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback());
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:7000",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:65535",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:80",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "0.0.0.0",
            "[::2]",
            "[::1",
            "[::1]80",
            "::1",
            "localhost:",
            "localhost:99999",
            "localhost:80:80",
            "127.0.0.1:x",
            "snowflaked",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_malformed_token_is_a_400_whatever_its_bytes() {
        for value in [
            "Bearer tökén".as_bytes(),
            b"Bearer \xff",
            b"Bearer \xffdefault",
            b"Bearer ",
            b"Bearer has space",
            b"Bearer semi;colon",
            b"Basic dXNlcjpwYXNz",
            b"default",
        ] {
            let error = bearer_token(&headers(&[("authorization", value)])).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{value:?}");
        }
        let two = headers(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer b"),
        ]);
        assert_eq!(
            bearer_token(&two).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(bearer_token(&headers(&[])).unwrap(), None);
        assert_eq!(
            bearer_token(&headers(&[("authorization", b"bearer  agent-1 ")])).unwrap(),
            Some("agent-1".to_string())
        );
    }

    #[test]
    fn over_tcp_the_host_is_checked_before_anything_else() {
        let registry = Registry::in_memory(std::time::Duration::from_secs(60));
        let minted = token::mint().unwrap();
        registry.add_minted(&minted).unwrap();
        let bearer = format!("Bearer {minted}");
        let uri: Uri = "/health".parse().unwrap();
        let ask = |host: Option<&[u8]>, auth: Option<&[u8]>| {
            let mut pairs: Vec<(&str, &[u8])> = Vec::new();
            if let Some(host) = host {
                pairs.push(("host", host));
            }
            if let Some(auth) = auth {
                pairs.push(("authorization", auth));
            }
            identify(&registry, Transport::Tcp, &uri, &headers(&pairs))
                .map_err(|e| (e.status.as_u16(), e.detail.kind))
        };
        assert_eq!(
            ask(Some(b"127.0.0.1:1"), Some(bearer.as_bytes())),
            Ok(minted.clone())
        );
        assert_eq!(
            ask(Some(b"localhost"), None),
            Err((401, "unknown_token".into()))
        );
        assert_eq!(
            ask(Some(b"localhost"), Some(b"Bearer default")),
            Err((401, "unknown_token".into()))
        );
        for host in [&b"attacker.example"[..], b"\xff", b"x"] {
            assert_eq!(
                ask(Some(host), Some(bearer.as_bytes())),
                Err((421, "foreign_host".into()))
            );
        }
        assert_eq!(
            ask(None, Some(bearer.as_bytes())),
            Err((421, "foreign_host".into()))
        );
        let absolute: Uri = "http://attacker.example/health".parse().unwrap();
        let error = identify(
            &registry,
            Transport::Tcp,
            &absolute,
            &headers(&[("host", b"localhost"), ("authorization", bearer.as_bytes())]),
        )
        .unwrap_err();
        assert_eq!(error.status.as_u16(), 421);
        // The Unix socket's peer was vouched for by the kernel: no Host rule, `default` allowed.
        assert_eq!(
            identify(
                &registry,
                Transport::Unix,
                &uri,
                &headers(&[("host", b"x")])
            )
            .unwrap(),
            "default"
        );
    }
}
