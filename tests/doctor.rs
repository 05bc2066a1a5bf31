//! `skiff doctor` and its checks at the start of `create`: a simulated bad
//! inotify limit, a taken port, an empty config file.

mod common;

use std::path::Path;

use common::*;

/// A directory laid out like /proc/sys with the given inotify limits.
fn proc_sys(dir: &Path, watches: u64, instances: u64) -> String {
    let inotify = dir.join("proc-sys/fs/inotify");
    std::fs::create_dir_all(&inotify).unwrap();
    std::fs::write(inotify.join("max_user_watches"), format!("{watches}\n")).unwrap();
    std::fs::write(inotify.join("max_user_instances"), format!("{instances}\n")).unwrap();
    dir.join("proc-sys").display().to_string()
}

fn finding(report: &serde_json::Value, check: &str) -> serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report}"))
        .clone()
}

fn doctor_with(proc: &str, args: &[&str]) -> Run {
    let mut all = vec!["doctor", "-o", "json"];
    all.extend_from_slice(args);
    let out = skiff_cmd(&all)
        .env("SKIFF_PROC_SYS", proc)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn inotify_limits_are_judged_and_a_bad_one_stops_create_before_any_change() {
    let dir = temp_dir();
    let good = proc_sys(&dir.path().join("good"), 524_288, 512);
    let run = doctor_with(&good, &[]);
    let report = run.json();
    assert_eq!(finding(&report, "inotify")["status"], "ok", "{report}");
    assert_eq!(finding(&report, "engine")["status"], "ok", "{report}");

    let low = proc_sys(&dir.path().join("low"), 524_288, 128);
    let report = doctor_with(&low, &[]).json();
    let f = finding(&report, "inotify");
    assert_eq!(f["status"], "warn", "{report}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("max_user_instances=128")
    );
    assert!(f["fix"].as_str().unwrap().contains(
        "sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"
    ));

    let bad = proc_sys(&dir.path().join("bad"), 1000, 8);
    let run = doctor_with(&bad, &[]);
    assert_eq!(run.code, 1, "a failed check fails doctor: {}", run.stderr);
    let report = run.json();
    assert_eq!(report["status"], "fail");
    assert_eq!(finding(&report, "inotify")["status"], "fail");

    // The same simulated host stops create before it makes anything.
    let name = unique_name("inotify");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let out = skiff_cmd(&["create", &name, "--image", &image])
        .env("SKIFF_PROC_SYS", &bad)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("inotify"), "{stderr}");
    assert!(stderr.contains("nothing was created"), "{stderr}");
    assert!(!stderr.contains("Create network"), "no step ran: {stderr}");
    assert_gone(&name);
}

#[test]
fn a_taken_host_port_fails_doctor_and_create() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {{containerPort: 80, hostPort: {port}}}\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let run = skiff(&["doctor", "--config", &config, "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let f = finding(&run.json(), "ports");
    assert_eq!(f["status"], "fail");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port}/tcp")),
        "{f}"
    );

    let text = skiff(&["doctor", "--config", &config]);
    assert!(text.stdout.contains("fail  ports"), "{}", text.stdout);
    assert!(
        text.stdout.contains(&format!("sport = :{port}")),
        "{}",
        text.stdout
    );

    let name = unique_name("port");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let run = skiff(&["create", &name, "--image", &image, "--config", &config]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("in use on this host"), "{}", run.stderr);
    assert_gone(&name);

    // Free again: doctor is happy with the ports.
    drop(listener);
    let run = skiff(&["doctor", "--config", &config, "-o", "json"]);
    assert_eq!(finding(&run.json(), "ports")["status"], "ok");
}

#[test]
fn an_empty_config_file_is_an_error_naming_it() {
    let dir = temp_dir();
    let comments = dir.path().join("only-comments.yaml");
    std::fs::write(&comments, "# nothing here yet\n").unwrap();
    for path in ["/dev/null".to_string(), comments.display().to_string()] {
        let name = unique_name("empty");
        let run = skiff(&["create", &name, "--config", &path]);
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{path}: the config file holds no configuration")),
            "{}",
            run.stderr
        );
        assert_gone(&name);
    }
}

#[test]
fn an_unreachable_engine_is_the_one_failure() {
    let run = skiff(&[
        "--engine-host",
        "unix:///nonexistent/skiff-docker.sock",
        "doctor",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
    let f = finding(&report, "engine");
    assert_eq!(f["status"], "fail");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("unix:///nonexistent/skiff-docker.sock"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("DOCKER_HOST"), "{f}");
}
