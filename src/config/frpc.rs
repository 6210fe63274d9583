//! Reads an existing stock frpc configuration unchanged: the legacy INI
//! (`[common]` + one section per proxy) or the current TOML, with frpc's
//! defaults. Both are flattened to `key = value` pairs under frp's current
//! key names, then mapped onto one model, so INI and TOML cannot drift.
//! Keys r58 does not use are named in warnings, never silently dropped.

use super::tunnel::{Proxy, ProxyType, Secret, Settings, WireChoice};

/// Legacy INI key → current key (frp's own conversion table).
const COMMON_KEYS: &[(&str, &str)] = &[
    ("server_addr", "serverAddr"),
    ("server_port", "serverPort"),
    ("user", "user"),
    ("token", "auth.token"),
    ("authentication_method", "auth.method"),
    ("tls_enable", "transport.tls.enable"),
    ("tls_trusted_ca_file", "transport.tls.trustedCaFile"),
    ("tls_server_name", "transport.tls.serverName"),
    (
        "disable_custom_tls_first_byte",
        "transport.tls.disableCustomTLSFirstByte",
    ),
    ("tcp_mux", "transport.tcpMux"),
    ("wire_protocol", "transport.wireProtocol"),
    ("pool_count", "transport.poolCount"),
    ("heartbeat_interval", "transport.heartbeatInterval"),
    ("heartbeat_timeout", "transport.heartbeatTimeout"),
    ("login_fail_exit", "loginFailExit"),
    ("protocol", "transport.protocol"),
    ("authenticate_heartbeats", "auth.heartbeats"),
    ("authenticate_new_work_conns", "auth.newWorkConns"),
];

const PROXY_KEYS: &[(&str, &str)] = &[
    ("type", "type"),
    ("local_ip", "localIP"),
    ("local_port", "localPort"),
    ("remote_port", "remotePort"),
    ("use_encryption", "transport.useEncryption"),
    ("use_compression", "transport.useCompression"),
];

type Pairs = Vec<(String, String)>;

/// `origin` names the file in messages.
pub fn parse(text: &str, origin: &str) -> Result<(Settings, Vec<String>), String> {
    let is_ini = text
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("[common]"));
    let (common, proxies) = if is_ini {
        flatten_ini(text)?
    } else {
        flatten_toml(text)?
    };
    let mut warnings = Vec::new();
    let s = build(common, proxies, &mut warnings)?;
    for w in &mut warnings {
        *w = format!("{origin}: {w}");
    }
    Ok((s, warnings))
}

fn flatten_ini(text: &str) -> Result<(Pairs, Vec<(String, Pairs)>), String> {
    let mut common = Pairs::new();
    let mut proxies: Vec<(String, Pairs)> = Vec::new();
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let name = name.trim().to_string();
            if name != "common" {
                proxies.push((name.clone(), Pairs::new()));
            }
            section = Some(name);
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!("line {}: expected key = value", i + 1));
        };
        let (k, v) = (k.trim(), v.trim().to_string());
        let table = if section.as_deref() == Some("common") {
            COMMON_KEYS
        } else {
            PROXY_KEYS
        };
        let key = table
            .iter()
            .find(|(old, _)| *old == k)
            .map(|(_, new)| new.to_string())
            .unwrap_or_else(|| format!("ini:{k}"));
        match (&section, proxies.last_mut()) {
            (Some(s), _) if s == "common" => common.push((key, v)),
            (Some(_), Some((_, p))) => p.push((key, v)),
            _ => return Err(format!("line {}: key outside a section", i + 1)),
        }
    }
    Ok((common, proxies))
}

fn flatten_toml(text: &str) -> Result<(Pairs, Vec<(String, Pairs)>), String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(1);
        format!("line {line}: {}", e.message().trim())
    })?;
    let mut common = Pairs::new();
    let mut proxies = Vec::new();
    for (k, v) in &table {
        if k == "proxies" {
            for p in v.as_array().into_iter().flatten() {
                let mut pairs = Pairs::new();
                flatten_value("", p, &mut pairs);
                let name = pairs
                    .iter()
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                pairs.retain(|(k, _)| k != "name");
                proxies.push((name, pairs));
            }
        } else {
            flatten_value(k, v, &mut common);
        }
    }
    Ok((common, proxies))
}

fn flatten_value(prefix: &str, v: &toml::Value, out: &mut Pairs) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| flatten_value(&join(k), v, out)),
        toml::Value::String(s) => out.push((prefix.into(), s.clone())),
        toml::Value::Array(a) if prefix == "auth.additionalScopes" => {
            for scope in a.iter().filter_map(|s| s.as_str()) {
                let key = match scope {
                    "HeartBeats" => "auth.heartbeats",
                    "NewWorkConns" => "auth.newWorkConns",
                    other => other,
                };
                out.push((key.into(), "true".into()));
            }
        }
        toml::Value::Integer(i) => out.push((prefix.into(), i.to_string())),
        toml::Value::Boolean(b) => out.push((prefix.into(), b.to_string())),
        // Only the key's name matters for the rest (they are warned about).
        _ => out.push((prefix.into(), String::new())),
    }
}

fn build(
    common: Pairs,
    proxies: Vec<(String, Pairs)>,
    warnings: &mut Vec<String>,
) -> Result<Settings, String> {
    let mut s = Settings::default();
    let mut ignored = Vec::new();
    for (k, v) in &common {
        match k.as_str() {
            "serverAddr" => s.server_addr = v.clone(),
            "serverPort" => s.server_port = num(k, v)?,
            "user" => s.user = v.clone(),
            "auth.token" => s.token = Secret::new(v.clone()),
            "auth.method" if v == "token" => {}
            "transport.protocol" if v == "tcp" => {}
            "auth.method" | "transport.protocol" => {
                return Err(format!(
                    "{k} = \"{v}\" is not supported (only \"tcp\" with token auth)"
                ));
            }
            "transport.tls.enable" => s.tls.enable = boolean(k, v)?,
            "transport.tls.trustedCaFile" => s.tls.trusted_ca_file = Some(v.into()),
            "transport.tls.serverName" => s.tls.server_name = Some(v.clone()),
            "transport.tls.disableCustomTLSFirstByte" => s.tls.first_byte = !boolean(k, v)?,
            "transport.tcpMux" => s.tcp_mux = boolean(k, v)?,
            "transport.wireProtocol" => s.wire = WireChoice::parse(v)?,
            "transport.poolCount" => s.pool_count = num(k, v)?,
            "auth.heartbeats" => s.auth_heartbeats = boolean(k, v)?,
            "auth.newWorkConns" => s.auth_new_work_conns = boolean(k, v)?,
            // r58 always pings and never gives up; the stock knobs for
            // that are accepted and superseded.
            "transport.heartbeatInterval" | "transport.heartbeatTimeout" | "loginFailExit" => {}
            _ => ignored.push(k.trim_start_matches("ini:").to_string()),
        }
    }
    for (name, pairs) in proxies {
        let mut p = Proxy {
            name: name.clone(),
            kind: ProxyType::Tcp,
            local_ip: "127.0.0.1".into(),
            local_port: 0,
            remote_port: 0,
            use_encryption: false,
            use_compression: false,
        };
        let mut supported = true;
        for (k, v) in &pairs {
            match k.as_str() {
                "type" => match v.as_str() {
                    "tcp" => p.kind = ProxyType::Tcp,
                    "udp" => p.kind = ProxyType::Udp,
                    other => {
                        warnings.push(format!(
                            "proxy '{name}': type \"{other}\" is not supported, proxy skipped"
                        ));
                        supported = false;
                    }
                },
                "localIP" => p.local_ip = v.clone(),
                "localPort" => p.local_port = num(k, v)?,
                "remotePort" => p.remote_port = num(k, v)?,
                "transport.useEncryption" => p.use_encryption = boolean(k, v)?,
                "transport.useCompression" => p.use_compression = boolean(k, v)?,
                "enabled" if !boolean(k, v)? => supported = false,
                "enabled" => {}
                other => ignored.push(format!("{name}.{}", other.trim_start_matches("ini:"))),
            }
        }
        if supported {
            s.proxies.push(p);
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!("ignored (not used by r58): {}", ignored.join(", ")));
    }
    Ok(s)
}

fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.trim_matches('"')
        .parse()
        .map_err(|_| format!("{k} = {v}: not a valid number"))
}

fn boolean(k: &str, v: &str) -> Result<bool, String> {
    match v.trim_matches('"') {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{k} = {v}: expected true or false")),
    }
}
