//! The edge proxy in front of a registrar (issue 15): the configs of a sipcore edge, a sipcore
//! registrar and a Kamailio registrar behind it, shared by edge_path.rs and edge_browser.rs.
use super::udp::{free_udp_port, wait_udp, wait_udp_bound};
use super::{free_port, temp_dir, Server};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The registrar: UDP (and an unused WebSocket port), save/lookup, record-routing INVITEs.
pub fn registrar_config(udp: u16) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         loadmodule \"tm.so\"\nloadmodule \"registrar.so\"\nloadmodule \"usrloc.so\"\n\
         route {{\n\
         \x20   if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, \"Too Many Hops\"); exit; }}\n\
         \x20   if (has_totag()) {{\n\
         \x20       if (loose_route()) {{ t_relay(); exit; }}\n\
         \x20       if (is_method(\"ACK\")) exit;\n\
         \x20       sl_send_reply(404, \"Not here\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"REGISTER\")) {{\n\
         \x20       xlog(\"L_INFO\", \"REGISTER $tu path=$hdr(Path)\\n\");\n\
         \x20       save(\"location\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"OPTIONS\") && $rU == NULL) {{ sl_send_reply(200, \"OK\"); exit; }}\n\
         \x20   if (is_method(\"CANCEL\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
         \x20   if (!lookup(\"location\")) {{ sl_send_reply(404, \"Not Found\"); exit; }}\n\
         \x20   if (is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20   t_relay();\n\
         }}\n"
    )
}

/// The edge: WebSocket for the clients, UDP towards the registrar at `registrar`.
pub fn edge_config(udp: u16, registrar: u16) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = ws:127.0.0.1:{{PORT}}\nsocket = udp:127.0.0.1:{udp}\n\
         loadmodule \"proto_ws.so\"\nloadmodule \"proto_udp.so\"\n\
         modparam(\"proto_ws\", \"require_origin\", 0)\n\
         loadmodule \"tm.so\"\nloadmodule \"rr.so\"\nloadmodule \"path.so\"\n\
         route {{\n\
         \x20   if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, \"Too Many Hops\"); exit; }}\n\
         \x20   if (is_method(\"REGISTER\")) {{\n\
         \x20       add_path();\n\
         \x20       $du = \"sip:127.0.0.1:{registrar};transport=udp\";\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (loose_route()) {{\n\
         \x20       if (!has_totag() && is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (has_totag()) {{\n\
         \x20       if (is_method(\"ACK\")) exit;\n\
         \x20       sl_send_reply(404, \"Not here\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if ($proto == \"ws\") {{\n\
         \x20       if (is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20       $du = \"sip:127.0.0.1:{registrar};transport=udp\";\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(403, \"Forbidden\");\n\
         }}\n"
    )
}

/// Kamailio 5.6 (Debian) as the registrar behind the edge: its `registrar` module with
/// `use_path` stores our Path and its `lookup()` sends each request for a user through it.
pub fn kamailio_config(udp: u16) -> String {
    format!(
        "#!KAMAILIO\n\
         debug=2\nlog_stderror=yes\nchildren=2\nauto_aliases=no\n\
         listen=udp:127.0.0.1:{udp}\nalias=\"example.com\"\n\
         loadmodule \"kex.so\"\nloadmodule \"corex.so\"\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         loadmodule \"rr.so\"\nloadmodule \"pv.so\"\nloadmodule \"maxfwd.so\"\nloadmodule \"usrloc.so\"\n\
         loadmodule \"registrar.so\"\nloadmodule \"textops.so\"\nloadmodule \"siputils.so\"\n\
         loadmodule \"xlog.so\"\nloadmodule \"path.so\"\n\
         modparam(\"usrloc\", \"db_mode\", 0)\n\
         modparam(\"registrar\", \"use_path\", 1)\n\
         modparam(\"registrar\", \"path_mode\", 0)\n\
         modparam(\"registrar\", \"gruu_enabled\", 0)\n\
         request_route {{\n\
         \x20   if (!mf_process_maxfwd_header(\"10\")) {{ sl_send_reply(\"483\", \"Too Many Hops\"); exit; }}\n\
         \x20   if (has_totag()) {{\n\
         \x20       if (loose_route()) {{ t_relay(); exit; }}\n\
         \x20       if (is_method(\"ACK\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
         \x20       sl_send_reply(\"404\", \"Not here\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"CANCEL\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
         \x20   if (is_method(\"REGISTER\")) {{\n\
         \x20       xlog(\"L_INFO\", \"REGISTER $tu path=$hdr(Path)\\n\");\n\
         \x20       save(\"location\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"OPTIONS\") && $rU == $null) {{ sl_send_reply(\"200\", \"OK\"); exit; }}\n\
         \x20   if (!lookup(\"location\")) {{ sl_send_reply(\"404\", \"Not Found\"); exit; }}\n\
         \x20   if (is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20   t_relay();\n\
         }}\n"
    )
}

/// A running Kamailio; killed on drop.
pub struct Kamailio {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Kamailio {
    pub fn start(udp: u16) -> Kamailio {
        let dir = temp_dir("kamailio");
        let cfg = dir.join("kamailio.cfg");
        std::fs::write(&cfg, kamailio_config(udp)).unwrap();
        let log = dir.join("stderr.log");
        let child = Command::new("/usr/sbin/kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(&cfg)
            // Its own process group: Kamailio forks its workers, and the drop kills them all.
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("/usr/sbin/kamailio (Debian package kamailio)");
        wait_udp_bound(udp);
        Kamailio { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The whole group: killing the main process alone left its workers running after
        // the suite (orphaned, bound to nothing, but alive).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The MI HTTP port in `srv`'s config.
pub fn mi_port_of(srv: &Server) -> u16 {
    let cfg = std::fs::read_to_string(&srv.cfg_path).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("mi_http_port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("mi_http_port in the config")
}

/// A sipcore registrar and the edge in front of it, both listening on UDP: the registrar, its
/// UDP port, the edge and its UDP port.
pub fn edge_before_sipcore() -> (Server, u16, Server, u16) {
    let (reg_udp, edge_udp) = (free_udp_port(), free_udp_port());
    let registrar = Server::start(&registrar_config(reg_udp));
    wait_udp(&registrar, reg_udp);
    let edge = Server::start(&edge_config(edge_udp, reg_udp));
    wait_udp(&edge, edge_udp);
    (registrar, reg_udp, edge, edge_udp)
}

/// Kamailio as the registrar and the edge in front of it: Kamailio, its UDP port, the edge and
/// its UDP port.
pub fn edge_before_kamailio() -> (Kamailio, u16, Server, u16) {
    let (kam_udp, edge_udp) = (free_udp_port(), free_udp_port());
    let kam = Kamailio::start(kam_udp);
    let edge = Server::start(&edge_config(edge_udp, kam_udp));
    wait_udp(&edge, edge_udp);
    (kam, kam_udp, edge, edge_udp)
}
