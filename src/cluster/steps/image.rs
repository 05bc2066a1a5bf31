//! Step: make sure every node image is present, pulling what is missing.

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use crate::cluster::create::{Context, StepDef, always};
use crate::engine::EngineError;
use crate::error::Result;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Ensure node image",
    applies: always,
    run,
};

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let images: BTreeSet<&str> = ctx
            .plan
            .nodes
            .iter()
            .map(|n| n.image.as_str())
            .filter(|i| !i.is_empty())
            .collect();
        for image in images {
            if ctx.engine.image_present(image).await? {
                continue;
            }
            let bar = ctx.ui.bytes_bar("pull", 0);
            bar.set_message(image.to_string());
            let result = ctx
                .engine
                .pull_image(image, &|p| {
                    bar.set_length(p.total);
                    bar.set_position(p.current);
                })
                .await;
            bar.finish_and_clear();
            result.map_err(|e| match e {
                EngineError::ImageUnavailable { .. } => e,
                other => EngineError::ImageUnavailable {
                    image: image.to_string(),
                    reason: other.to_string(),
                },
            })?;
        }
        Ok(())
    })
}
