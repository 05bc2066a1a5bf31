//! Checks across nodes, run on the final node plan (file nodes after
//! `count` and command-line overrides): at least one control plane, and no
//! host port bound twice.

use std::net::IpAddr;

use super::build::{Ctx, Planned, Via};
use super::error::{ConfigError, ErrorKind};
use super::locate::FieldPath;
use super::model::{Networking, Protocol, Role};

pub(crate) fn control_plane_present(ctx: &Ctx<'_>, plan: &[Planned]) -> Result<(), ConfigError> {
    if plan.iter().any(|p| p.node.role == Role::ControlPlane) {
        return Ok(());
    }
    Err(ctx.error(
        ErrorKind::Conflict,
        &FieldPath::root().key("nodes"),
        "no control-plane node; a cluster needs at least one",
        "add `- role: control-plane` to `nodes` (a node without `role` is a control plane), \
         or pass --control-planes 1",
    ))
}

/// One host port claimed by one copy of one port mapping.
struct Binding {
    port: u16,
    protocol: Protocol,
    address: IpAddr,
    plan: usize,
    copy: u32,
    mapping: usize,
}

/// Two bindings collide when port and protocol match and the addresses
/// overlap; `0.0.0.0` and `::` overlap every address (kind treats them
/// alike too).
fn collides(a: &Binding, b: &Binding) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.address == b.address || a.address.is_unspecified() || b.address.is_unspecified())
}

const PORT_HINT: &str = "a host port can be published only once per address: change hostPort, \
     give the mappings different listenAddress values (0.0.0.0 and :: cover every address), \
     or use hostPort: 0 to let the container engine pick a free port";

pub(crate) fn host_ports_unique(ctx: &Ctx<'_>, plan: &[Planned]) -> Result<(), ConfigError> {
    let mut seen: Vec<Binding> = Vec::new();
    for binding in bindings(plan) {
        if let Some(earlier) = seen.iter().find(|b| collides(b, &binding)) {
            return Err(port_clash(ctx, plan, earlier, &binding));
        }
        seen.push(binding);
    }
    Ok(())
}

/// Every fixed host port, in node order; copies (from `count` or a flag)
/// each claim their template's ports again.
fn bindings(plan: &[Planned]) -> impl Iterator<Item = Binding> + '_ {
    plan.iter().enumerate().flat_map(|(p, planned)| {
        (0..planned.count).flat_map(move |copy| {
            planned
                .node
                .extra_port_mappings
                .iter()
                .enumerate()
                .filter(|(_, m)| m.host_port != 0)
                .map(move |(mapping, m)| Binding {
                    port: m.host_port,
                    protocol: m.protocol,
                    address: m.listen_address,
                    plan: p,
                    copy,
                    mapping,
                })
        })
    })
}

fn mapping_path(planned: &Planned, mapping: usize) -> FieldPath {
    planned.path().key("extraPortMappings").index(mapping)
}

fn port_clash(ctx: &Ctx<'_>, plan: &[Planned], earlier: &Binding, later: &Binding) -> ConfigError {
    let planned = &plan[later.plan];
    let path = mapping_path(planned, later.mapping).key("hostPort");
    let what = format!(
        "host port {}/{} on {}",
        later.port, later.protocol, later.address
    );
    let message = if earlier.plan == later.plan && earlier.copy != later.copy {
        format!(
            "{what} would be bound by every copy of this node ({}), but only one can have it",
            copies_reason(planned)
        )
    } else {
        let other = mapping_path(&plan[earlier.plan], earlier.mapping);
        let overlap = if earlier.address == later.address {
            String::new()
        } else {
            format!(" on {}", earlier.address)
        };
        format!("{what} is already mapped by {other}{overlap}")
    };
    ctx.error(ErrorKind::Conflict, &path, message, PORT_HINT)
}

fn copies_reason(planned: &Planned) -> String {
    match planned.via {
        Via::Flag(flag) => format!("{flag} {}", planned.count),
        Via::File | Via::Default => format!("count: {}", planned.count),
    }
}

/// The API server is published on the host as well; it must not share its
/// port with an extra port mapping.
pub(crate) fn api_server_port_free(
    ctx: &Ctx<'_>,
    networking: &Networking,
    plan: &[Planned],
) -> Result<(), ConfigError> {
    if networking.api_server_port == 0 {
        return Ok(());
    }
    let api = Binding {
        port: networking.api_server_port,
        protocol: Protocol::Tcp,
        address: networking.api_server_address,
        plan: usize::MAX,
        copy: 0,
        mapping: 0,
    };
    let Some(clash) = bindings(plan).find(|b| collides(b, &api)) else {
        return Ok(());
    };
    let other = mapping_path(&plan[clash.plan], clash.mapping);
    Err(ctx.error(
        ErrorKind::Conflict,
        &FieldPath::root().key("networking").key("apiServerPort"),
        format!(
            "apiServerPort {} on {} is also mapped by {other} (hostPort {} on {})",
            api.port, api.address, clash.port, clash.address
        ),
        "pick another apiServerPort (or 0 to let skiff choose), or change that mapping's hostPort",
    ))
}
