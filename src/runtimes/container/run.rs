//! One container Cargo from create to remove: the job's input on stdin, stdout streamed as
//! Cargo messages, stderr to the job's log, and an outcome from the exit (or the engine's
//! OOM flag). Cancel, timeout and every error path remove the container before returning;
//! a guard removes it if the run is dropped half-way (a panic, an abandoned job).

use std::collections::HashMap;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, Mount, MountTypeEnum};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use super::sandbox::Sandbox;
use super::stdout::Stdout;
use crate::jobs::JobSpec;
use crate::runtimes::stderr::StderrLog;
use crate::runtimes::{CargoIo, Error};

/// Label naming the Island that runs a container (the start-up sweep looks for it).
pub const ISLAND_LABEL: &str = "io.archipelag.island";
/// Label naming the job a container runs.
pub const JOB_LABEL: &str = "io.archipelag.job";

fn engine(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
    let context = context.into();
    move |source| Error::Engine { context, source }
}

/// `island-job-<job id>`, with anything a container name cannot hold replaced.
pub fn container_name(job_id: &str) -> String {
    let safe: String =
        job_id.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    format!("island-job-{safe}")
}

/// Where a job's model appears inside its container (the file keeps its name).
pub const MODEL_DIR: &str = "/models";

/// The job's model as the container sees it: the cached file bind-mounted read-only under
/// [`MODEL_DIR`], its path in `ISLAND_MODEL_PATH`, and the job's context size and temperature
/// in `ISLAND_MODEL_CONTEXT_SIZE` and `ISLAND_MODEL_TEMPERATURE` when it names them.
fn model_setup(job: &JobSpec, model: Option<&std::path::Path>) -> (Option<Vec<Mount>>, Option<Vec<String>>) {
    let Some(path) = model else { return (None, None) };
    let name = path.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let target = format!("{MODEL_DIR}/{name}");
    let mount = Mount {
        target: Some(target.clone()),
        source: Some(path.to_string_lossy().into_owned()),
        typ: Some(MountTypeEnum::BIND),
        read_only: Some(true),
        ..Default::default()
    };
    let mut env = vec![format!("ISLAND_MODEL_PATH={target}")];
    env.extend(job.model_context_size.map(|n| format!("ISLAND_MODEL_CONTEXT_SIZE={n}")));
    env.extend(job.model_temperature.map(|t| format!("ISLAND_MODEL_TEMPERATURE={t}")));
    (Some(vec![mount]), Some(env))
}

/// A created container; removed by [`Container::remove`] or, failing that, when dropped.
pub struct Container {
    docker: Docker,
    name: String,
    removed: bool,
}

impl Container {
    /// Creates the container for `job` (a leftover of the same name is removed first), with
    /// `model` (a file in the model cache) mounted read-only when the job has one.
    pub async fn create(
        docker: &Docker,
        island_id: &str,
        job: &JobSpec,
        (image, model): (&str, Option<&std::path::Path>),
        sandbox: &Sandbox,
    ) -> Result<Container, Error> {
        let name = container_name(job.id.as_str());
        let labels = HashMap::from([
            (ISLAND_LABEL.to_string(), island_id.to_string()),
            (JOB_LABEL.to_string(), job.id.to_string()),
        ]);
        let (mounts, env) = model_setup(job, model);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            network_disabled: Some(!sandbox.network),
            env,
            host_config: Some(bollard::models::HostConfig { mounts, ..sandbox.host_config() }),
            ..Default::default()
        };
        let options = || Some(CreateContainerOptionsBuilder::new().name(&name).build());
        let created = match docker.create_container(options(), body.clone()).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
                warn!(container = %name, "a container of this job's name was left behind; removing it");
                let _ = remove(docker, &name).await;
                docker.create_container(options(), body).await
            }
            other => other,
        };
        created.map_err(engine(format!("cannot create the container for {image}")))?;
        Ok(Container { docker: docker.clone(), name, removed: false })
    }

    /// Runs the container to its end and says how it ended.
    pub async fn run(&self, job: &JobSpec, io: &CargoIo, sandbox: &Sandbox) -> Result<(), Error> {
        let attach = AttachContainerOptionsBuilder::new().stdin(true).stdout(true).stderr(true).stream(true).build();
        let attached = self.docker.attach_container(&self.name, Some(attach)).await.map_err(engine("cannot attach"))?;
        let (mut output, input) = (attached.output, attached.input);
        self.docker.start_container(&self.name, None).await.map_err(engine("cannot start the container"))?;
        // The input as one JSON line, then end of file (protocol §9.1), fed while the output is
        // read: a Cargo that never reads a large input, or reads it slowly while it prints,
        // must not stall the job. A Cargo that exits without reading it ends the feed.
        let feed = feed(input, &job.input);
        let (mut stdout, mut stderr) = (Stdout::default(), StderrLog::new(job.id.to_string()));
        let read = async {
            while let Some(frame) = output.next().await {
                match frame.map_err(engine("the container's output broke off"))? {
                    LogOutput::StdOut { message } => {
                        for event in stdout.push(&message)? {
                            let _ = io.events.send(event).await;
                        }
                    }
                    LogOutput::StdErr { message } => stderr.write(&message),
                    LogOutput::StdIn { .. } | LogOutput::Console { .. } => {}
                }
            }
            if let Some(event) = stdout.finish() {
                let _ = io.events.send(event).await;
            }
            Ok::<(), Error>(())
        };
        // The output's end ends the job; an input still being fed then is dropped with it.
        let stream = async {
            tokio::pin!(feed);
            let mut fed = false;
            tokio::pin!(read);
            loop {
                tokio::select! {
                    () = &mut feed, if !fed => fed = true,
                    r = &mut read => return r,
                }
            }
        };
        let streamed = tokio::select! {
            r = stream => r,
            () = io.cancel.cancelled() => Err(Error::Cancelled),
            () = tokio::time::sleep(sandbox.timeout) => Err(Error::Timeout(sandbox.timeout)),
        };
        stderr.finish();
        streamed?;
        self.outcome(sandbox).await
    }

    /// The exit, once the output ended: zero, an exit code, a signal or out of memory.
    async fn outcome(&self, sandbox: &Sandbox) -> Result<(), Error> {
        let waited = self.docker.wait_container(&self.name, None).next().await;
        let code = match waited {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(engine("cannot learn how the container ended")(e)),
            None => return Err(Error::Crashed("the engine did not say how the container ended".into())),
        };
        let state =
            self.docker.inspect_container(&self.name, None).await.map_err(engine("cannot inspect the container"))?;
        if state.state.and_then(|s| s.oom_killed) == Some(true) {
            return Err(Error::OutOfMemory { limit_mb: sandbox.memory_mb });
        }
        match code {
            0 => Ok(()),
            c @ 129..=159 => Err(Error::Crashed(format!("killed by signal {} ({})", c - 128, signal_name(c - 128)))),
            c => Err(Error::ExitCode(c)),
        }
    }

    /// Kills and removes the container, and waits until the engine has. Its name when the
    /// engine could not remove it (gone away, restarting): the caller tries again later.
    pub async fn remove(mut self) -> Option<String> {
        self.removed = true;
        (!remove(&self.docker, &self.name).await).then(|| self.name.clone())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // Dropped half-way (a panic, a job abandoned past its cancel grace): remove it on the
        // runtime if one is still there; the start-up sweep catches what this misses.
        warn!(container = %self.name, "the container's run ended abnormally; removing the container");
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (docker, name) = (self.docker.clone(), self.name.clone());
            rt.spawn(async move {
                let _ = remove(&docker, &name).await;
            });
        }
    }
}

/// Writes `input` as one JSON line to the container's stdin, then closes it.
async fn feed(mut stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>, input: &serde_json::Value) {
    let mut line = serde_json::to_vec(input).expect("JSON values serialize");
    line.push(b'\n');
    let fed = async {
        stdin.write_all(&line).await?;
        stdin.shutdown().await
    };
    if let Err(e) = fed.await {
        debug!(error = %e, "the container did not take all of its input");
    }
}

/// Force-removes a container (killing it), saying so when the engine refuses. True when it
/// is gone (or was already).
pub async fn remove(docker: &Docker, name: &str) -> bool {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => debug!(container = %name, "container removed"),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => {
            warn!(container = %name, error = %e, "could not remove the container; trying again when the engine answers");
            return false;
        }
    }
    true
}

fn signal_name(n: i64) -> &'static str {
    match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "a signal",
    }
}
