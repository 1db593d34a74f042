//! Stdout throughput: 1 GiB written by the container into a FIFO the benchmark reads, with
//! the task made through the generated client (`ctr`'s own copy would be what is measured).

use std::path::Path;
use std::time::Instant;

use ctrd_testbed::Bundle;

use super::order;
use super::results::Pair;
use super::subject::Subject;
use crate::Error;

/// Median MiB/s of 3 runs per shim, alternating which goes first.
pub fn measure(subjects: [&Subject<'_>; 2], rootfs: &str) -> Result<Pair, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(Path::new("runtime"), e))?;
    let mut samples = [Vec::new(), Vec::new()];
    for i in 0..3 {
        for k in order(i) {
            let id = format!("tp-{i}");
            samples[k].push(runtime.block_on(stdout_mib_s(subjects[k], rootfs, &id))?);
        }
    }
    Ok(Pair::median_of(samples))
}

/// One 1 GiB run: MiB/s from the task's start to the FIFO's end.
async fn stdout_mib_s(s: &Subject<'_>, rootfs: &str, id: &str) -> Result<f64, Error> {
    use ctrd_api::containerd::services::containers::v1 as containers;
    use ctrd_api::containerd::services::tasks::v1 as tasks;
    use tokio::io::AsyncReadExt;

    let fail =
        |what: &str, e: &dyn std::fmt::Display| Error::Message(format!("{}: {what}: {e}", s.name));
    let client = ctrd_client::Client::connect(s.containerd.grpc_address())
        .await
        .map_err(|e| fail("connect", &e))?
        .with_namespace(&s.ns);
    let bundle = Bundle::busybox(&["/bin/dd", "if=/dev/zero", "bs=1048576", "count=1024"])
        .map_err(|e| fail("bundle", &e))?;
    bundle
        .edit_spec(|spec| spec["root"]["path"] = rootfs.into())
        .map_err(|e| fail("spec", &e))?;
    let spec =
        std::fs::read(bundle.config_path()).map_err(|e| Error::io(&bundle.config_path(), e))?;
    let fifo_dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let fifo = fifo_dir.path().join("stdout");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(&fifo, e.into()))?;
    let mut reader = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
        .map_err(|e| Error::io(&fifo, e))?;
    client
        .containers()
        .create(containers::CreateContainerRequest {
            container: Some(containers::Container {
                id: id.into(),
                runtime: Some(containers::container::Runtime {
                    name: "io.containerd.runc.v2".into(),
                    options: None,
                }),
                spec: Some(ctrd_api::prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                    value: spec,
                }),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| fail("create container", &e))?;
    client
        .tasks()
        .create(tasks::CreateTaskRequest {
            container_id: id.into(),
            // The Go shim opens every stream it is given a path for; stderr shares the FIFO.
            stdout: fifo.display().to_string(),
            stderr: fifo.display().to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| fail("create task", &e))?;
    let started = Instant::now();
    client
        .tasks()
        .start(tasks::StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        })
        .await
        .map_err(|e| fail("start", &e))?;
    // The FIFO is opened read-write (so the read end never sees EOF early): read exactly 1 GiB.
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    while total < 1 << 30 {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::io(&fifo, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = started.elapsed();
    let _ = client
        .tasks()
        .wait(tasks::WaitRequest {
            container_id: id.into(),
            exec_id: String::new(),
        })
        .await;
    let _ = client
        .tasks()
        .delete(tasks::DeleteTaskRequest {
            container_id: id.into(),
        })
        .await;
    let _ = client
        .containers()
        .delete(containers::DeleteContainerRequest { id: id.into() })
        .await;
    Ok(total as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64())
}
