//! A sample Tether broker compiled to a WebAssembly component (`wasm32-wasip2`).
//!
//! Tether gives a broker its device's properties as env vars (docs: agent/allocation/env.ts):
//! each property as `<NAME>_<SUFFIX>` (SUFFIX: the 16 hex digits ending the device's name,
//! upper-cased), also as plain `<NAME>` when the container has one device, and `TETHER_DEVICES`
//! listing the device names. This broker picks those out of its environment, prints them as
//! `KEY=value` lines at start (so `kubectl logs` shows them) and serves the same lines on
//! `GET /` (plain text) on port `PORT` (default 8080). `GET /healthz` answers `ok`.
//!
//! Which variables are the device's: `TETHER_DEVICES`; every `K_<SUFFIX>` for a device in it,
//! and `K` beside it; and any variable starting with a prefix in `BROKER_ENV_PREFIXES`
//! (comma-separated, default `MQTT_`: the MQTT handler's own `MQTT_BROKER_URL`s). Kubernetes'
//! service variables and the rest of the environment stay out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let lines = device_lines(&env);
    print!("{lines}");
    let port = env.get("PORT").map(String::as_str).unwrap_or("8080");
    let address = format!("0.0.0.0:{port}");
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("wasm-broker: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    println!("wasm-broker: listening on {address}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(error) = serve(stream, &lines) {
                    eprintln!("wasm-broker: connection failed: {error}");
                }
            }
            Err(error) => eprintln!("wasm-broker: accept failed: {error}"),
        }
    }
}

/// The device's variables as sorted `KEY=value` lines, each ending in a newline.
fn device_lines(env: &BTreeMap<String, String>) -> String {
    let devices = env.get("TETHER_DEVICES").map(String::as_str).unwrap_or("");
    let suffixes: Vec<String> = devices.split(',').filter_map(device_suffix).collect();
    let prefixes: Vec<String> = env
        .get("BROKER_ENV_PREFIXES")
        .map(String::as_str)
        .unwrap_or("MQTT_")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut keys: Vec<&str> = Vec::new();
    if env.contains_key("TETHER_DEVICES") {
        keys.push("TETHER_DEVICES");
    }
    for key in env.keys() {
        if prefixes.iter().any(|p| key.starts_with(p.as_str())) {
            keys.push(key);
        }
        for suffix in &suffixes {
            if let Some(plain) = key.strip_suffix(suffix.as_str()).and_then(|k| k.strip_suffix('_')) {
                keys.push(key);
                if let Some((plain, _)) = env.get_key_value(plain) {
                    keys.push(plain);
                }
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys.iter().map(|key| format!("{key}={}\n", env[*key])).collect()
}

/// The env suffix of a device name ending in `-<16 hex digits>`.
fn device_suffix(name: &str) -> Option<String> {
    let (_, hex) = name.trim().rsplit_once('-')?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_uppercase())
}

/// One HTTP/1.1 exchange, then the connection closes.
fn serve(mut stream: TcpStream, lines: &str) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&request);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/") => ("200 OK", lines),
        ("GET", "/healthz") => ("200 OK", "ok\n"),
        ("GET", _) => ("404 Not Found", "not found\n"),
        _ => ("405 Method Not Allowed", "method not allowed\n"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn picks_the_devices_variables() {
        let env = env(&[
            ("TETHER_DEVICES", "mqtt-ha-0123456789abcdef"),
            ("HA_NAME_0123456789ABCDEF", "livingroom"),
            ("HA_NAME", "livingroom"),
            ("MQTT_BROKER_URL", "mqtt://10.0.0.1:1883"),
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            device_lines(&env),
            "HA_NAME=livingroom\nHA_NAME_0123456789ABCDEF=livingroom\nMQTT_BROKER_URL=mqtt://10.0.0.1:1883\nTETHER_DEVICES=mqtt-ha-0123456789abcdef\n"
        );
    }

    #[test]
    fn prefixes_are_configurable() {
        let env = env(&[("BROKER_ENV_PREFIXES", "A_, B_"), ("A_X", "1"), ("B_Y", "2"), ("MQTT_TOPIC", "t")]);
        assert_eq!(device_lines(&env), "A_X=1\nB_Y=2\n");
    }

    #[test]
    fn suffix_needs_sixteen_hex_digits() {
        assert_eq!(device_suffix("x-0123456789abcdef").as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(device_suffix("x-0123"), None);
        assert_eq!(device_suffix("plain"), None);
    }
}
