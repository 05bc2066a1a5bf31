//! The engine layer against the real engine: what skiff does to containers
//! that have no tools at all (the load balancer image is distroless, like
//! kindest/haproxy), and what it reads about the engine.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use skiff::engine::{Engine, Flavor};

/// A started container of the test LB image, removed on drop.
struct Container(String);

impl Container {
    fn start(tag: &str) -> Container {
        let name = unique_name(tag);
        docker_out(&["run", "-d", "--name", &name, &lb_image()]);
        Container(name)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn engine() -> Engine {
    Engine::connect(None).await.expect("connect to the engine")
}

/// (mode, content) of one file, read with `docker cp` (the engine's archive
/// download), as no tool in the container could read it.
fn read_back(container: &str, path: &str) -> (u32, Vec<u8>) {
    let out = docker(&["cp", &format!("{container}:{path}"), "-"]);
    assert!(
        out.status.success(),
        "docker cp {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mode = entry.header().mode().unwrap() & 0o7777;
    let mut content = Vec::new();
    entry.read_to_end(&mut content).unwrap();
    (mode, content)
}

#[test]
fn files_are_written_into_a_container_that_has_no_tools() {
    let lb = Container::start("nosh");
    // The double must be as strict as kindest/haproxy, or this proves nothing.
    assert!(
        !docker(&["exec", &lb.0, "sh", "-c", "true"])
            .status
            .success(),
        "the test LB image {} has a shell; rebuild it with scripts/build-test-lb-image.sh",
        lb_image()
    );
    runtime().block_on(async {
        let engine = engine().await;
        // A new directory tree, a private mode, and an existing file replaced.
        engine
            .write_file(&lb.0, "/kind/a/b/secret.conf", b"one\n", 0o600)
            .await
            .unwrap();
        engine
            .write_file(&lb.0, "/usr/local/etc/haproxy/haproxy.cfg", b"two\n", 0o644)
            .await
            .unwrap();
    });
    assert_eq!(
        read_back(&lb.0, "/kind/a/b/secret.conf"),
        (0o600, b"one\n".to_vec())
    );
    assert_eq!(
        read_back(&lb.0, "/usr/local/etc/haproxy/haproxy.cfg"),
        (0o644, b"two\n".to_vec())
    );
}

#[test]
fn the_load_balancer_reloads_on_a_signal_sent_by_the_engine() {
    let lb = Container::start("hup");
    let loads = |name: &str| {
        let out = docker(&["logs", name]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.matches("Loading success").count()
    };
    let wait_for = |n: usize| {
        for _ in 0..100 {
            if loads(&lb.0) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(wait_for(1), "haproxy did not start");
    runtime().block_on(async {
        engine()
            .await
            .signal_container(&lb.0, "SIGHUP")
            .await
            .unwrap()
    });
    assert!(wait_for(2), "haproxy did not reload on SIGHUP");
    assert_eq!(inspect(&lb.0, "{{.State.Running}}"), "true");
}

#[test]
fn engine_traits_come_from_the_engine() {
    let traits = runtime().block_on(async { engine().await.traits().await.unwrap() });
    let info = |format: &str| docker_out(&["info", "-f", format]);
    assert_eq!(traits.flavor, Flavor::Docker);
    assert_eq!(traits.cgroup_v2, info("{{.CgroupVersion}}") == "2");
    assert_eq!(
        traits.rootless,
        info("{{json .SecurityOptions}}").contains("name=rootless")
    );
    let mtu = docker_out(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.driver.mtu\"}}",
        "bridge",
    ]);
    assert_eq!(traits.mtu, mtu.parse().ok());
}

/// A TLS-terminating proxy on 127.0.0.1 in front of the engine's unix
/// socket, requiring a client certificate signed by the test CA: what
/// `dockerd --tlsverify` on port 2376 looks like to a client. Returns its port.
async fn tls_proxy_to_the_engine_socket() -> u16 {
    use std::sync::Arc;
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(data.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(data.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(data.join("server-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that fails the handshake just gets no connection.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut engine) = tokio::net::UnixStream::connect("/var/run/docker.sock").await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
            });
        }
    });
    port
}

#[test]
fn tls_endpoints_connect_with_the_client_certificate() {
    use skiff::engine::endpoint::{Endpoint, Origin, TlsFiles};

    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let expected = docker_out(&["version", "-f", "{{.Server.Version}}"]);
    runtime().block_on(async {
        let port = tls_proxy_to_the_engine_socket().await;
        let endpoint = |tls: Option<TlsFiles>| Endpoint {
            host: format!("tcp://127.0.0.1:{port}"),
            origin: Origin::DockerHost,
            tls,
        };
        let engine = Engine::connect_to(endpoint(Some(TlsFiles::in_dir(&data))))
            .await
            .expect("connect over TLS");
        assert_eq!(engine.server_version().await.unwrap(), expected);

        // A CA that did not sign the server's certificate is refused.
        let wrong_ca = TlsFiles {
            ca: data.join("other-ca.pem"),
            ..TlsFiles::in_dir(&data)
        };
        assert!(Engine::connect_to(endpoint(Some(wrong_ca))).await.is_err());
        // So is plain HTTP to a TLS port.
        assert!(Engine::connect_to(endpoint(None)).await.is_err());
        // Missing client files are named before anything is sent.
        let missing = TlsFiles::in_dir(&data.join("nowhere"));
        let err = Engine::connect_to(endpoint(Some(missing)))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("nowhere/ca.pem"), "{err}");
    });
}
