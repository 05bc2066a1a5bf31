//! Tests that disturb the whole engine, so they run only where the test
//! run owns it: set `SKIFF_TEST_OWNS_DOCKER=1` (scripts/test.sh does when it
//! started dockerd itself, as on CI). Cargo runs test binaries one after
//! another, and this binary holds a single test, so nothing else runs
//! while the daemon restarts.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn clusters_survive_a_docker_restart_and_delete_all_removes_them() {
    if !owns_docker() {
        eprintln!("skipped: SKIFF_TEST_OWNS_DOCKER is not 1 (this test restarts dockerd)");
        return;
    }
    let guard = create("restart", &["--workers", "1"]);
    let name = guard.0.clone();
    let nodes = containers_of(&name);
    let ip = |n: &str| {
        inspect(
            n,
            &format!("{{{{(index .NetworkSettings.Networks \"skiff-{name}\").IPAddress}}}}"),
        )
    };
    let ips: Vec<String> = nodes.iter().map(|n| ip(n)).collect();
    let cp = &nodes[0];
    let port = inspect(
        cp,
        "{{(index (index .NetworkSettings.Ports \"6443/tcp\") 0).HostPort}}",
    );

    restart_dockerd();

    // The restart policy brings every node back, with the same address and port.
    let start = Instant::now();
    while skiff(&["status", &name, "-o", "json"]).json()["state"] != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nodes did not come back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(nodes.iter().map(|n| ip(n)).collect::<Vec<_>>(), ips);
    assert_eq!(
        inspect(
            cp,
            "{{(index (index .NetworkSettings.Ports \"6443/tcp\") 0).HostPort}}"
        ),
        port
    );
    // And Kubernetes with them, once the nodes have booted again (until then
    // the API server refuses connections, as a real one would).
    let start = Instant::now();
    let args = [
        "exec",
        cp.as_str(),
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "wait",
        "--for=condition=Ready",
        "nodes",
        "--all",
        "--timeout=10s",
    ];
    while !docker(&args).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "Kubernetes did not come back"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // `delete --all` removes every skiff cluster (this run owns the engine).
    let other = create("restart2", &[]);
    skiff(&["delete", "--all"]).ok();
    assert_gone(&name);
    assert_gone(&other.0);
}
