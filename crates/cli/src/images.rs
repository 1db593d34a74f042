//! `ctrd images ...`

use ctrd_client::{Client, Credentials, ImportOptions, Platform, Progress, PullOptions, Route};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Images;
use crate::error::Error;
use crate::table;

/// Runs an images subcommand.
pub async fn images(client: &Client, command: Images, json: bool) -> Result<i32, Error> {
    match command {
        Images::Pull {
            no_unpack,
            snapshotter,
            user,
            tlscacert,
            tlscert,
            tlskey,
            skip_verify,
            max_concurrent_downloads,
            plain_http,
            local,
            platform,
            reference,
        } => {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let mut import = ImportOptions::default().progress(sender);
            if local {
                import = import.route(Route::Local);
            }
            if !no_unpack {
                import = import.unpack(&snapshotter);
            }
            let mut options = PullOptions::from(import);
            options.ca_file = tlscacert;
            options.client_cert = tlscert;
            options.client_key = tlskey;
            options.skip_verify = skip_verify;
            options.max_concurrent_downloads = max_concurrent_downloads;
            options.plain_http = plain_http;
            if let Some(user) = user {
                options.credentials = Some(
                    Credentials::parse(&user)
                        .ok_or_else(|| Error::Usage("--user takes USER:PASSWORD".to_owned()))?,
                );
            }
            if let Some(platform) = platform {
                options.platform = Some(Platform::parse(&platform).ok_or_else(|| {
                    Error::Usage(format!(
                        "--platform {platform:?}: give os/architecture[/variant], such as linux/arm64"
                    ))
                })?);
            }
            let display = tokio::spawn(show_progress(receiver));
            let pulled = client.pull(&reference, options).await;
            let _ = display.await;
            let image = pulled?;
            if json {
                table::json(&image);
            } else {
                println!("{} {}", image.name, image.digest);
            }
        }
        Images::Import {
            no_unpack,
            snapshotter,
            name,
            transfer,
            file,
        } => {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            let mut options = ImportOptions {
                name,
                ..ImportOptions::default()
            }
            .progress(sender);
            if transfer {
                options = options.route(Route::Transfer);
            }
            if !no_unpack {
                options = options.unpack(&snapshotter);
            }
            let display = tokio::spawn(show_progress(receiver));
            let imported = client.import(&file, options).await;
            let _ = display.await;
            let imported = imported?;
            if json {
                table::json(&imported);
            } else {
                for image in &imported {
                    println!("{} {}", image.name, image.digest);
                }
            }
        }
        Images::Ls { quiet } => {
            client.require_namespace().await?;
            let images = client.list_images(&[]).await?;
            if json {
                table::json(&images);
            } else if quiet {
                for image in &images {
                    println!("{}", image.name);
                }
            } else {
                let mut rows = Vec::new();
                for image in &images {
                    let size = match client.image_size(&image.name).await {
                        Ok(size) => table::size(size),
                        Err(_) => "-".into(),
                    };
                    rows.push(vec![
                        image.name.clone(),
                        image.media_type.clone(),
                        image.digest.clone(),
                        size,
                    ]);
                }
                table::print(&["REF", "TYPE", "DIGEST", "SIZE"], &rows);
            }
        }
        Images::Rm { names } => {
            client.require_namespace().await?;
            for name in names {
                client.remove_image(&name).await?;
                println!("{name}");
            }
        }
        Images::Tag { source, target } => {
            client.require_namespace().await?;
            let image = client.tag_image(&source, &target).await?;
            if json {
                table::json(&image);
            } else {
                println!("{}", image.name);
            }
        }
    }
    Ok(0)
}

/// Draws one bar for the bytes written and a spinner line for unpacking, on stderr (hidden
/// when stderr is not a terminal).
async fn show_progress(mut receiver: tokio::sync::mpsc::UnboundedReceiver<Progress>) {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("importing");
    let mut done: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    while let Some(progress) = receiver.recv().await {
        match progress {
            Progress::Total { bytes } => bar.set_length(bytes),
            Progress::Blob {
                digest, written, ..
            } => {
                done.insert(digest, written);
                bar.set_position(done.values().sum());
            }
            Progress::Image { name } => bar.println(format!("image {name}")),
            Progress::Layer {
                done: layer,
                layers,
                ..
            } => bar.set_message(format!("unpack {layer}/{layers}")),
        }
    }
    bar.finish_and_clear();
}
