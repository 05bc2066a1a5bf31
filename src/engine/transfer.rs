//! Moving bulk bytes: image exports out of the engine, streams into execs
//! and into containers' filesystems.
//!
//! All are streams so an image of any size goes from the engine to the nodes
//! without being held in memory or written to a temporary file.

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::exec::Attached;
use super::{Engine, EngineError, ExecOutput};

/// What `skiff load` needs to know about an engine image.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    /// `sha256:…`: the config digest, or the manifest/index digest with the
    /// containerd image store.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// Unpacked size: close to what an export of it streams.
    pub size: u64,
    /// The layers' uncompressed digests, base first (`RootFS.Layers`).
    pub diff_ids: Vec<String>,
    /// The platform, as the image config states it.
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Engine {
    /// ID, tags and size of `image`, or `None` when the engine does not have it.
    pub async fn image_details(&self, image: &str) -> Result<Option<ImageDetails>, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(info) => Ok(Some(ImageDetails {
                id: info.id.unwrap_or_default(),
                repo_tags: info.repo_tags.unwrap_or_default(),
                size: info.size.unwrap_or(0).max(0) as u64,
                diff_ids: info.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                os: info.os.unwrap_or_default(),
                architecture: info.architecture.unwrap_or_default(),
                variant: info.variant.filter(|v| !v.is_empty()),
            })),
            Err(e) => {
                let err = self.wrap(format!("inspect image {image}"), e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// The `docker save` tarball of `names` (tags or IDs), as a stream of
    /// chunks. One request for all names, so shared layers are sent once.
    pub fn export_images(
        &self,
        names: &[String],
    ) -> impl Stream<Item = Result<bytes::Bytes, EngineError>> + Send + Unpin + use<> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let what = format!("export {}", names.join(", "));
        let engine = self.clone();
        self.docker()
            .export_images(&refs)
            .map(move |chunk| chunk.map_err(|e| engine.wrap(what.clone(), e)))
    }

    /// Extracts the tar stream `tar` into directory `dir` of `container`
    /// (`PUT /containers/{id}/archive`, what `docker cp` uses). The engine
    /// writes the files itself, into the container's volumes where the path
    /// is one: no process in the container, no stdin pipe to copy through.
    /// `dir` must exist; the tar's directories are created as needed.
    pub async fn upload_archive(
        &self,
        container: &str,
        dir: &str,
        tar: impl Stream<Item = bytes::Bytes> + Send + 'static,
    ) -> Result<(), EngineError> {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker()
            .upload_to_container(container, Some(options), bollard::body_stream(tar))
            .await
            .map_err(|e| self.wrap(format!("copy files into {container}:{dir}"), e))
    }

    /// Runs `cmd` in `container` with `input` streamed to its stdin (closed
    /// when the stream ends), calling `on_written` with each chunk's size.
    ///
    /// If the command exits before reading all its input, the rest is not
    /// sent and `input` is dropped, so a producer feeding it sees the
    /// receiver gone; success is the command's exit code either way.
    pub async fn exec_streaming<S, C>(
        &self,
        container: &str,
        cmd: &[&str],
        input: S,
        on_written: impl Fn(u64),
    ) -> Result<ExecOutput, EngineError>
    where
        S: Stream<Item = C> + Unpin,
        C: AsRef<[u8]>,
    {
        let what = || format!("run `{}` in {container}", cmd.join(" "));
        let Attached {
            id,
            output,
            mut stdin,
        } = self.attach(container, cmd, true).await?;
        let writer = async move {
            let mut input = input;
            while let Some(chunk) = input.next().await {
                stdin.write_all(chunk.as_ref()).await?;
                on_written(chunk.as_ref().len() as u64);
            }
            // Half-close: the command sees end of input, we still read its output.
            stdin.shutdown().await
        };
        let reader = self.collect(output, &what);
        let mut writer = std::pin::pin!(writer);
        let mut reader = std::pin::pin!(reader);
        // Output ends when the command exits: stop writing then, since nobody
        // reads the rest (ctr stops at the tar's end-of-archive marker).
        let (written, read) = tokio::select! {
            read = &mut reader => (None, read),
            written = &mut writer => (Some(written), reader.await),
        };
        let mut out = read?;
        out.exit_code = self.exit_code(&id, &what).await?;
        // A write error after the command succeeded is only the pipe closing
        // behind it; before a failure it is part of the story.
        if let Some(Err(e)) = written
            && !out.success()
        {
            out.stderr
                .push_str(&format!("\n(writing its input failed: {e})"));
        }
        Ok(out)
    }
}
