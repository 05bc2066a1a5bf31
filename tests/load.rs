//! `skiff load`: images from the engine and from archives, into real
//! containerd inside real node containers, checked with `ctr` on each node.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use sha2::{Digest, Sha256};

/// Test images, removed from the engine on drop.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// A tiny image made offline (`docker import` of a one-file tar), unique to
/// this test run: `skiff-load-test-<pid>-<tag>:v1`.
fn tiny_image(tag: &str, images: &mut Images) -> String {
    let name = format!("skiff-load-test-{}-{tag}:v1", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), format!("{name}\n")).unwrap();
    let tar = dir.path().join("rootfs.tar");
    run(Command::new("tar")
        .args(["-C"])
        .arg(dir.path())
        .args(["-cf"])
        .arg(&tar)
        .arg("hello.txt"));
    docker_out(&["import", tar.to_str().unwrap(), &name]);
    images.0.push(name.clone());
    name
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names in a node's `k8s.io` namespace.
fn node_images(node: &str) -> Vec<String> {
    docker_out(&["exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn qualified(image: &str) -> String {
    format!("docker.io/library/{image}")
}

fn nodes_of(cluster: &str) -> Vec<String> {
    containers_of(cluster)
}

/// `(node, status)` of each outcome in a JSON report.
fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json()["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["node"].as_str().unwrap_or("-").to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_image_reaches_every_node_once_and_known_images_are_only_tagged() {
    let cluster = create("load", &["--workers", "2"]);
    let mut images = Images(Vec::new());
    let image = tiny_image("every", &mut images);
    let nodes = nodes_of(&cluster.0);
    assert_eq!(nodes.len(), 3);

    let first = skiff(&["load", &image, "--cluster", &cluster.0, "-o", "json"]).ok();
    assert!(
        statuses(&first).iter().all(|(_, s)| s == "loaded"),
        "{}",
        first.stdout
    );
    for node in &nodes {
        assert!(
            node_images(node).contains(&qualified(&image)),
            "{node}: {:?}",
            node_images(node)
        );
    }

    // Again: every node already holds it, so nothing is streamed.
    let again = skiff(&["load", &image, "--cluster", &cluster.0]).ok();
    assert_eq!(
        again.stdout.matches("already present").count(),
        3,
        "{}",
        again.stdout
    );

    // The same image under a new name: only the name is added.
    let retagged = image.replace(":v1", ":v2");
    docker_out(&["tag", &image, &retagged]);
    images.0.push(retagged.clone());
    let tagged = skiff(&["load", &retagged, "--cluster", &cluster.0, "-o", "json"]).ok();
    assert!(
        statuses(&tagged).iter().all(|(_, s)| s == "tagged"),
        "{}",
        tagged.stdout
    );
    assert_eq!(tagged.json()["outcomes"][0]["bytes"], 0);
    for node in &nodes {
        let held = node_images(node);
        assert!(
            held.contains(&qualified(&retagged)) && held.contains(&qualified(&image)),
            "{node}: {held:?}"
        );
    }
}

#[test]
fn only_the_named_nodes_get_the_images() {
    let cluster = create("loadsub", &["--workers", "2"]);
    let mut images = Images(Vec::new());
    let a = tiny_image("suba", &mut images);
    let b = tiny_image("subb", &mut images);
    let worker = format!("{}-worker", cluster.0);
    let worker2 = format!("{}-worker2", cluster.0);

    // Two images in one command, one node by full name and one by short name.
    let run = skiff(&[
        "load",
        &a,
        &b,
        "--cluster",
        &cluster.0,
        "--nodes",
        &format!("{worker},control-plane"),
    ])
    .ok();
    assert_eq!(run.stdout.matches("loaded").count(), 4, "{}", run.stdout);
    for node in [&worker, &format!("{}-control-plane", cluster.0)] {
        let held = node_images(node);
        assert!(
            held.contains(&qualified(&a)) && held.contains(&qualified(&b)),
            "{node}: {held:?}"
        );
    }
    let untouched = node_images(&worker2);
    assert!(
        !untouched.contains(&qualified(&a)) && !untouched.contains(&qualified(&b)),
        "{untouched:?}"
    );

    let unknown = skiff(&["load", &a, "--cluster", &cluster.0, "--nodes", "worker7"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no node named \"worker7\""),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains(&worker2),
        "the hint lists the nodes: {}",
        unknown.stderr
    );
}

#[test]
fn failures_name_the_image_and_node_and_spare_the_rest() {
    let cluster = create("loadfail", &["--workers", "2"]);
    let mut images = Images(Vec::new());
    let image = tiny_image("fail", &mut images);
    let missing = format!("skiff-load-test-{}-missing:v1", std::process::id());
    let stopped = format!("{}-worker2", cluster.0);
    docker_out(&["stop", "-t", "1", &stopped]);

    let run = skiff(&[
        "load",
        &image,
        &missing,
        "--cluster",
        &cluster.0,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&missing) && run.stderr.contains("no such image"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{image} on {stopped}: the node is not running")),
        "{}",
        run.stderr
    );
    let outcomes = statuses(&run);
    let loaded: Vec<&str> = outcomes
        .iter()
        .filter(|(_, s)| s == "loaded")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        loaded,
        [
            format!("{}-control-plane", cluster.0),
            format!("{}-worker", cluster.0)
        ]
    );
    for node in &loaded {
        assert!(node_images(node).contains(&qualified(&image)), "{node}");
    }
}

#[test]
fn archives_in_both_formats_load_and_anything_else_is_refused() {
    let cluster = create("loadarch", &["--workers", "1"]);
    let mut images = Images(Vec::new());
    let saved = tiny_image("saved", &mut images);
    let dir = tempfile::tempdir().unwrap();
    let docker_tar = dir.path().join("saved.tar");
    docker_out(&["save", "-o", docker_tar.to_str().unwrap(), &saved]);
    let oci_name = format!(
        "docker.io/library/skiff-load-test-{}-oci:v1",
        std::process::id()
    );
    let oci_tar = oci_layout(dir.path(), &oci_name);

    let run = skiff(&[
        "load",
        "--archive",
        docker_tar.to_str().unwrap(),
        oci_tar.to_str().unwrap(),
        "--cluster",
        &cluster.0,
        "-o",
        "json",
    ])
    .ok();
    assert!(
        statuses(&run).iter().all(|(_, s)| s == "loaded"),
        "{}",
        run.stdout
    );
    for node in nodes_of(&cluster.0) {
        let held = node_images(&node);
        assert!(
            held.contains(&qualified(&saved)) && held.contains(&oci_name),
            "{node}: {held:?}"
        );
    }
    let again = skiff(&[
        "load",
        "--archive",
        oci_tar.to_str().unwrap(),
        "--cluster",
        &cluster.0,
    ])
    .ok();
    assert_eq!(
        again.stdout.matches("already present").count(),
        2,
        "{}",
        again.stdout
    );

    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, "this is no image archive\n".repeat(100)).unwrap();
    let run = skiff(&[
        "load",
        "--archive",
        garbage.to_str().unwrap(),
        "--cluster",
        &cluster.0,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("garbage.tar: the file is not a tar archive"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker save"),
        "the hint says what is accepted: {}",
        run.stderr
    );
}

#[test]
fn a_failed_import_leaves_no_image_behind() {
    let cluster = create("loadbroken", &[]);
    let node = format!("{}-control-plane", cluster.0);
    let dir = tempfile::tempdir().unwrap();
    let name = format!("skiff-load-test-{}-broken:v1", std::process::id());
    // A well-formed docker save archive whose layer is not a tar: ctr
    // creates the image, then fails to unpack it.
    let layer = b"not a tar layer".repeat(100);
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        arch(),
        hex(&layer)
    );
    let config_file = format!("{}.json", hex(config.as_bytes()));
    std::fs::create_dir(dir.path().join("layer")).unwrap();
    std::fs::write(dir.path().join("layer/layer.tar"), &layer).unwrap();
    std::fs::write(dir.path().join(&config_file), &config).unwrap();
    let manifest = format!(
        r#"[{{"Config":"{config_file}","RepoTags":["{name}"],"Layers":["layer/layer.tar"]}}]"#
    );
    std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
    let archive = dir.path().join("broken.tar");
    pack(
        dir.path(),
        &["layer", &config_file, "manifest.json"],
        &archive,
    );

    let run = skiff(&[
        "load",
        "--archive",
        archive.to_str().unwrap(),
        "--cluster",
        &cluster.0,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&node) && run.stderr.contains("ctr images import exited"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("removed what it created: {}", qualified(&name))),
        "{}",
        run.stderr
    );
    let held = node_images(&node);
    assert!(
        !held.contains(&qualified(&name)),
        "half-imported image left behind: {held:?}"
    );
}

/// Builds `name` offline with the classic builder: `FROM scratch` and one
/// `ADD` per file, so images that start with the same files share those
/// layers (the builder's cache), as rebuilt application images do.
fn layered_image(name: &str, files: &[(&str, &[u8])], images: &mut Images) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    for (file, data) in files {
        std::fs::write(dir.path().join(file), data).unwrap();
        dockerfile += &format!("ADD {file} /\n");
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", name])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    images.0.push(name.to_string());
    name.to_string()
}

/// Deterministic incompressible-looking bytes (layers must differ by seed).
fn noise(seed: u8, len: usize) -> Vec<u8> {
    let mut state = u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn diff_ids(image: &str) -> Vec<String> {
    serde_json::from_str(&docker_out(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        image,
    ]))
    .unwrap()
}

/// `ctr images check` of one name in a node's `k8s.io` namespace:
/// (target digest, status), e.g. ("sha256:…", "complete (4/4)").
fn check(node: &str, namespace: &str, name: &str) -> (String, String) {
    let out = docker_out(&["exec", node, "ctr", "-n", namespace, "images", "check"]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not on {node} ({namespace}):\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[2].to_string(), format!("{} {}", cols[3], cols[4]))
}

/// Imports `image` the way kind does, whole, into `namespace` of `node`.
fn full_import(image: &str, node: &str, namespace: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    docker_out(&["save", "-o", tar.to_str().unwrap(), image]);
    let out = Command::new("docker")
        .args([
            "exec", "-i", node, "ctr", "-n", namespace, "images", "import",
        ])
        .args(["--snapshotter=overlayfs", "-"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctr import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn outcome_on<'a>(run: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    run["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["node"] == node)
        .unwrap_or_else(|| panic!("no outcome for {node}: {run}"))
}

#[test]
fn a_rebuilt_image_sends_only_its_new_layers_and_is_the_image_a_full_import_gives() {
    let cluster = create("loadlayers", &["--workers", "1"]);
    let cp = format!("{}-control-plane", cluster.0);
    let worker = format!("{}-worker", cluster.0);
    let mut images = Images(Vec::new());
    let prefix = format!("skiff-load-test-{}-app", std::process::id());
    // A 9 MiB base (sent straight into the content store on the first load),
    // then two small layers (sent in the layout) that change between builds.
    let base = noise(1, 9 << 20);
    let v1 = layered_image(
        &format!("{prefix}:1"),
        &[
            ("base.bin", &base),
            ("app.bin", &noise(2, 1_200_000)),
            ("note.txt", b"one"),
        ],
        &mut images,
    );
    let v2 = layered_image(
        &format!("{prefix}:2"),
        &[
            ("base.bin", &base),
            ("app.bin", &noise(3, 1_200_000)),
            ("note.txt", b"two"),
        ],
        &mut images,
    );
    let layers = diff_ids(&v2);
    assert_eq!(diff_ids(&v1)[0], layers[0], "the base layer is shared");
    assert_ne!(diff_ids(&v1)[1], layers[1]);

    skiff(&[
        "load",
        &v1,
        "--cluster",
        &cluster.0,
        "--nodes",
        "control-plane",
    ])
    .ok();
    let run = skiff(&[
        "load",
        &v2,
        "--cluster",
        &cluster.0,
        "--nodes",
        "control-plane",
        "-o",
        "json",
    ])
    .ok()
    .json();
    let partial = outcome_on(&run, &cp);
    assert_eq!(partial["status"], "loaded", "{run}");
    assert!(partial.get("note").is_none(), "sent layer by layer: {run}");
    let skipped = partial["bytesSkipped"].as_u64().unwrap();
    let sent = partial["bytes"].as_u64().unwrap();
    assert!(skipped >= 9 << 20, "the base was not sent: {run}");
    assert!(
        sent < 1_300_000 + 64 * 1024,
        "only the new layers were sent: {run}"
    );

    // The reference: kind's method, a whole import, on the other node.
    full_import(&v2, &worker, "k8s.io");
    let name = qualified(&v2);
    let (digest, status) = check(&cp, "k8s.io", &name);
    let (full_digest, full_status) = check(&worker, "k8s.io", &name);
    assert_eq!(digest, full_digest, "same manifest, so the same image");
    assert_eq!(status, "complete (4/4)");
    assert_eq!(full_status, status);
    let id = docker_out(&["image", "inspect", "-f", "{{.Id}}", &v2]);
    assert!(
        node_images(&cp).contains(&id),
        "the CRI plugin knows it by its ID"
    );
    // And the kubelet's view: the image is unpacked where the CRI plugin looks.
    let unpacked = docker_out(&["exec", &cp, "ctr", "-n", "k8s.io", "images", "check"]);
    assert!(
        unpacked
            .lines()
            .any(|l| l.starts_with(&name) && l.trim_end().ends_with("true")),
        "{unpacked}"
    );

    // Loading it again is a no-op; a node that has nothing gets it all.
    let again = skiff(&["load", &v2, "--cluster", &cluster.0, "-o", "json"])
        .ok()
        .json();
    assert_eq!(outcome_on(&again, &cp)["status"], "present", "{again}");
    assert_eq!(outcome_on(&again, &worker)["status"], "present", "{again}");
}

#[test]
fn images_sharing_a_base_send_it_once_and_a_blob_the_node_lacks_is_made_up_for() {
    let cluster = create("loadshare", &[]);
    let node = format!("{}-control-plane", cluster.0);
    let mut images = Images(Vec::new());
    let prefix = format!("skiff-load-test-{}-svc", std::process::id());
    let base = noise(9, 3 << 20);
    let a = layered_image(
        &format!("{prefix}-a:1"),
        &[("base.bin", &base), ("a", b"a")],
        &mut images,
    );
    let b = layered_image(
        &format!("{prefix}-b:1"),
        &[("base.bin", &base), ("b", b"b")],
        &mut images,
    );

    // skiff is told the node holds the base layer, which it does not: the
    // partial import cannot be complete, and skiff must notice and send
    // the images whole.
    let run = skiff_cmd(&["load", &a, &b, "--cluster", &cluster.0, "-o", "json"])
        .env("SKIFF_LOAD_PRETEND_HELD", &diff_ids(&a)[0])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for outcome in report["outcomes"].as_array().unwrap() {
        assert_eq!(outcome["status"], "loaded", "{report}");
        let note = outcome["note"].as_str().unwrap_or_default();
        assert!(
            note.contains(&diff_ids(&a)[0]) && note.contains("missing"),
            "{report}"
        );
        // One export for both images: the shared base travelled once (in
        // the whole export), not once per image.
        let bytes = outcome["bytes"].as_u64().unwrap();
        assert!(bytes < 2 * (3 << 20), "{report}");
    }
    // Both complete, and the same images a whole import makes.
    for image in [&a, &b] {
        full_import(image, &node, "skiff-test");
        let name = qualified(image);
        let (digest, status) = check(&node, "k8s.io", &name);
        assert_eq!(status, "complete (3/3)", "{image}");
        assert_eq!(digest, check(&node, "skiff-test", &name).0, "{image}");
    }

    // Without the lie, a rebuild of both sends neither the base nor twice.
    let a2 = layered_image(
        &format!("{prefix}-a:2"),
        &[("base.bin", &base), ("a", b"a2")],
        &mut images,
    );
    let b2 = layered_image(
        &format!("{prefix}-b:2"),
        &[("base.bin", &base), ("b", b"b2")],
        &mut images,
    );
    let run = skiff(&["load", &a2, &b2, "--cluster", &cluster.0, "-o", "json"])
        .ok()
        .json();
    for outcome in run["outcomes"].as_array().unwrap() {
        assert_eq!(outcome["status"], "loaded", "{run}");
        assert!(outcome.get("note").is_none(), "{run}");
        assert!(
            outcome["bytesSkipped"].as_u64().unwrap() >= 3 << 20,
            "{run}"
        );
        assert!(outcome["bytes"].as_u64().unwrap() < 64 * 1024, "{run}");
    }
    for image in [&a2, &b2] {
        assert_eq!(
            check(&node, "k8s.io", &qualified(image)).1,
            "complete (3/3)"
        );
    }
}

/// sha256 in hex.
fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The engine's architecture in OCI terms.
fn arch() -> &'static str {
    match docker_out(&["info", "-f", "{{.Architecture}}"]).as_str() {
        "aarch64" | "arm64" => "arm64",
        _ => "amd64",
    }
}

/// `tar -cf archive -C dir entries...`
fn pack(dir: &Path, entries: &[&str], archive: &Path) {
    run(Command::new("tar")
        .arg("-cf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args(entries));
}

/// Writes `dir/oci/` as an OCI image layout of a multi-platform image whose
/// index names the host's platform and one more, whose blobs are absent (as
/// in an export from the containerd image store), and packs it as a tar.
fn oci_layout(dir: &Path, name: &str) -> std::path::PathBuf {
    let root = dir.join("oci");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |data: &[u8]| -> String {
        let digest = hex(data);
        std::fs::write(blobs.join(&digest), data).unwrap();
        format!("sha256:{digest}")
    };

    let rootfs = dir.join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), format!("{name}\n")).unwrap();
    let layer_tar = dir.join("layer.tar");
    pack(&rootfs, &["hello.txt"], &layer_tar);
    let layer = std::fs::read(&layer_tar).unwrap();
    let layer_digest = blob(&layer);

    let arch = arch();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_digest = blob(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_digest = blob(manifest.as_bytes());
    let other_arch = if arch == "amd64" { "arm64" } else { "amd64" };
    let absent = format!(
        "sha256:{}",
        hex(b"a manifest for another platform, not in the archive")
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{absent}","size":500,"platform":{{"architecture":"{other_arch}","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let index_digest = blob(index.as_bytes());
    let top = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{index_digest}","size":{},"annotations":{{"io.containerd.image.name":"{name}","org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
        index.len()
    );
    std::fs::write(root.join("index.json"), top).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let archive = dir.join("oci.tar");
    pack(&root, &["oci-layout", "blobs", "index.json"], &archive);
    archive
}
