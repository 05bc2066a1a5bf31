//! `skiff exec` / `skiff ssh` and `skiff ip` against real node containers.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

#[test]
fn exec_passes_output_stdin_and_the_exit_code_through() {
    let guard = create("exec", &["--workers", "1"]);
    let name = &guard.0;

    let run = skiff(&[
        "exec",
        "--cluster",
        name,
        "worker",
        "--",
        "sh",
        "-c",
        "hostname; echo to-stderr >&2; exit 7",
    ]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), format!("{name}-worker"));
    assert!(run.stderr.contains("to-stderr"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("error:"),
        "no error line: {}",
        run.stderr
    );

    // The alias, the default node, success.
    let run = skiff(&["ssh", "--cluster", name, "--", "hostname"]).ok();
    assert_eq!(run.stdout.trim(), format!("{name}-control-plane"));

    // A command that does not exist: the engine's 126/127, not 0.
    let run = skiff(&["exec", "--cluster", name, "--", "no-such-command-skiff"]);
    assert!(run.code == 126 || run.code == 127, "{run:?}");

    // Stdin reaches the command.
    let mut child = skiff_cmd(&[
        "exec",
        "--cluster",
        name,
        "worker",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED IN\n");

    // No command on a terminal: a shell with a TTY (script(1) gives us one).
    let cmd = format!("{SKIFF} exec --cluster {name} worker");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", default_kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tty && echo shell-on-$(hostname); exit 5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("shell-on-{name}-worker")), "{text}");
    assert!(text.contains("/dev/pts/"), "a TTY: {text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
}

#[test]
fn ip_prints_node_addresses_and_unknown_names_suggest_the_closest() {
    let guard = create("ip", &["--workers", "1"]);
    let name = &guard.0;
    let expected = |node: &str| {
        inspect(
            node,
            &format!("{{{{(index .NetworkSettings.Networks \"skiff-{name}\").IPAddress}}}}"),
        )
    };
    let run = skiff(&["ip", "--cluster", name]).ok();
    assert_eq!(
        run.stdout.trim(),
        expected(&format!("{name}-control-plane"))
    );
    let json = skiff(&["ip", "worker", "--cluster", name, "-o", "json"])
        .ok()
        .json();
    assert_eq!(json["node"], format!("{name}-worker"));
    assert_eq!(json["ip"], expected(&format!("{name}-worker")).as_str());

    let run = skiff(&["ip", "wroker", "--cluster", name]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("has no node \"wroker\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `worker`?"),
        "{}",
        run.stderr
    );

    // A stopped node keeps its address; exec says how to start it.
    let worker_ip = expected(&format!("{name}-worker"));
    docker_out(&["stop", &format!("{name}-worker")]);
    let run = skiff(&["ip", "worker", "--cluster", name]).ok();
    assert_eq!(run.stdout.trim(), worker_ip);
    let run = skiff(&["exec", "--cluster", name, "worker", "--", "true"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not running"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("skiff start {name}")),
        "{}",
        run.stderr
    );

    // A misspelt cluster, for every new command.
    let typo = format!("{name}x");
    for args in [
        vec!["ip", "--cluster", &typo],
        vec!["exec", "--cluster", &typo, "--", "true"],
        vec!["export", "logs", "--cluster", &typo],
        vec!["service", "kubernetes", "--cluster", &typo],
    ] {
        let run = skiff(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("no cluster named \"{typo}\"")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("did you mean `{name}`?")),
            "{args:?}: {}",
            run.stderr
        );
    }
}
