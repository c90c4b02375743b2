//! Jobs ("Cargos" to run): their ids, what an assignment says, which runtime they ask
//! for, the states a job passes through and the reports about them. Plain types: running
//! one is the agent's (`agent::executor`), on a `runtimes::Runtime`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Which runtime a job asks for (`runtime_type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A WASI preview 1 module.
    Wasm,
    /// A GGUF model through llama.cpp.
    Llmcpp,
    /// An ONNX model.
    Onnx,
    /// A diffusion image model.
    Diffusers,
    /// A Docker container; also any runtime name this Island does not know (as the
    /// reference agent does).
    #[default]
    #[serde(other)]
    Container,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Container => "container",
            RuntimeKind::Wasm => "wasm",
            RuntimeKind::Llmcpp => "llmcpp",
            RuntimeKind::Onnx => "onnx",
            RuntimeKind::Diffusers => "diffusers",
        })
    }
}

/// A job id, as the coordinator assigns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        JobId(s.to_string())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        JobId(s)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job assignment: the coordinator's `AssignJob` message (protocol §3.4), field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job id.
    #[serde(rename = "job_id")]
    pub id: JobId,
    /// The Cargo id; the coordinator sends a string or an integer.
    #[serde(default, deserialize_with = "string_or_int")]
    pub workload_id: Option<String>,
    /// The Cargo's input, passed on as it is.
    pub input: serde_json::Value,
    /// When the coordinator's lease on the job ends (Unix ms).
    pub lease_expires: i64,
    /// Which runtime runs it.
    #[serde(default, rename = "runtime_type")]
    pub runtime: RuntimeKind,
    /// Container image (container jobs).
    #[serde(default)]
    pub container_image: Option<String>,
    /// Expected image digest (container jobs).
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Where the module is (WASM jobs).
    #[serde(default)]
    pub wasm_url: Option<String>,
    /// Expected module hash (WASM jobs).
    #[serde(default)]
    pub wasm_hash: Option<String>,
    /// Model location (native model jobs).
    #[serde(default)]
    pub model_url: Option<String>,
    /// Expected model hash.
    #[serde(default)]
    pub model_hash: Option<String>,
    /// The context size the model runs with (GGUF `n_ctx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_context_size: Option<u32>,
    /// The sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_temperature: Option<f32>,
    /// Sandbox tier asked for (container jobs).
    #[serde(default)]
    pub sandbox_tier: Option<String>,
}

impl JobSpec {
    /// A job with only the fields every runtime needs; the rest are unset.
    pub fn new(id: impl Into<JobId>, runtime: RuntimeKind, input: serde_json::Value) -> Self {
        JobSpec {
            id: id.into(),
            workload_id: None,
            input,
            lease_expires: 0,
            runtime,
            container_image: None,
            image_digest: None,
            wasm_url: None,
            wasm_hash: None,
            model_url: None,
            model_hash: None,
            model_context_size: None,
            model_temperature: None,
            sandbox_tier: None,
        }
    }
}

impl JobSpec {
    /// Parses an assignment. A field of the wrong type is named in the error
    /// (`` `lease_expires`: invalid type: string "soon", expected i64 ``), as the
    /// configuration's errors name their key.
    ///
    /// # Errors
    /// What is wrong and, where it is one field, which.
    pub fn from_json(bytes: &[u8]) -> Result<JobSpec, String> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json's "at line 1 column 106" says nothing useful about a one-line message.
            let text = inner.to_string();
            let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(t, _)| t).to_string();
            if path == "." || inner.is_syntax() || inner.is_eof() { text } else { format!("`{path}`: {text}") }
        })
    }
}

fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        I(i64),
    }
    Ok(Option::<Id>::deserialize(d)?.map(|id| match id {
        Id::S(s) => s,
        Id::I(i) => i.to_string(),
    }))
}

/// Where a job is in its life; the names are the coordinator's (`completed` is never used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted and starting.
    Started,
    /// The Cargo said it is ready and output flows.
    Streaming,
    /// Ran to a clean (zero) exit.
    Succeeded,
    /// Did not run to a clean exit.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobState {
    /// True for the three end states.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Clean exit.
    Succeeded,
    /// Anything else, with the reason for the coordinator and the owner.
    Failed(String),
    /// Cancelled (by the coordinator, the owner, pause-now or shutdown).
    Cancelled,
}

impl JobOutcome {
    /// The end state this outcome reports.
    pub fn state(&self) -> JobState {
        match self {
            JobOutcome::Succeeded => JobState::Succeeded,
            JobOutcome::Failed(_) => JobState::Failed,
            JobOutcome::Cancelled => JobState::Cancelled,
        }
    }
}

/// What the coordinator link must publish about a job, in order: states, output chunks,
/// progress and images.
#[derive(Debug, Clone, PartialEq)]
pub enum JobReport {
    /// A state change (`host.<id>.status`).
    Status {
        /// The job.
        job_id: JobId,
        /// The new state.
        state: JobState,
        /// Why it failed.
        error: Option<String>,
        /// When it happened (Unix ms).
        at_ms: i64,
    },
    /// An output chunk (`host.<id>.output`).
    Output {
        /// The job.
        job_id: JobId,
        /// From 1.
        seq: u64,
        /// The text.
        chunk: String,
        /// The final empty chunk after a clean exit.
        is_final: bool,
    },
    /// Progress (`host.<id>.progress`).
    Progress {
        /// The job.
        job_id: JobId,
        /// Steps done.
        step: u32,
        /// Steps in all.
        total: u32,
    },
    /// An image (`host.<id>.image`).
    Image {
        /// The job.
        job_id: JobId,
        /// Standard base64.
        data: String,
        /// `png`, `jpeg`, …
        format: String,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
}

impl JobReport {
    /// The job this report is about.
    pub fn job_id(&self) -> &JobId {
        match self {
            JobReport::Status { job_id, .. }
            | JobReport::Output { job_id, .. }
            | JobReport::Progress { job_id, .. }
            | JobReport::Image { job_id, .. } => job_id,
        }
    }
}

/// The most of a failure reason a status message carries: a job's final state must always
/// fit the server's message limit.
const MAX_ERROR_BYTES: usize = 4096;

/// `error`, cut to [`MAX_ERROR_BYTES`] at a character boundary with a note saying so (the
/// whole text is in the Island's log, where the executor wrote it).
pub(crate) fn bounded_error(error: String) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let cut = (0..=MAX_ERROR_BYTES).rev().find(|&i| error.is_char_boundary(i)).unwrap_or(0);
    format!("{}… ({} more bytes in the Island's log)", &error[..cut], error.len() - cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_as_the_coordinator_sends_them() {
        let json = r#"{"job_id":"j1","workload_id":42,"input":{"prompt":"Hello"},
            "lease_expires":1773900060000,"runtime_type":"wasm","extra":"ignored"}"#;
        let spec: JobSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.workload_id.as_deref(), Some("42"));
        assert_eq!(spec.runtime, RuntimeKind::Wasm);
        let json = r#"{"job_id":"j2","input":{},"lease_expires":0,"runtime_type":"something-new"}"#;
        let spec: JobSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.runtime, RuntimeKind::Container, "unknown runtimes fall through to containers");
        let missing = serde_json::from_str::<JobSpec>(r#"{"job_id":"j3","input":{}}"#).unwrap_err();
        assert!(missing.to_string().contains("lease_expires"));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let e = JobSpec::from_json(br#"{"job_id":"j","input":{},"lease_expires":"soon"}"#).unwrap_err();
        assert_eq!(e, r#"`lease_expires`: invalid type: string "soon", expected i64"#);
        let e = JobSpec::from_json(br#"{"job_id":"j","input":{},"lease_expires":0,"wasm_url":12345}"#).unwrap_err();
        assert!(e.starts_with("`wasm_url`: invalid type: integer `12345`"), "{e}");
        let e = JobSpec::from_json(br#"{"job_id":"j","input":{}}"#).unwrap_err();
        assert_eq!(e, "missing field `lease_expires`");
        let e = JobSpec::from_json(b"{not json").unwrap_err();
        assert!(e.starts_with("key must be a string"), "{e}");
    }

    #[test]
    fn long_failure_reasons_are_cut_with_a_note_at_a_character_boundary() {
        assert_eq!(bounded_error("short".into()), "short");
        let long = "é".repeat(3000);
        let cut = bounded_error(long);
        assert!(cut.len() < MAX_ERROR_BYTES + 64 && cut.ends_with("more bytes in the Island's log)"), "{}", cut.len());
        assert!(cut.contains("… (1904 more bytes"), "{}", &cut[cut.len() - 60..]);
    }
}
