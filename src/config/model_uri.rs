//! Where a model comes from: `hf://owner/repo[@revision][:path/in/repo]` (Hugging Face; the
//! file is chosen through the API when no path is given) or a direct `https://` URL. A bad
//! URI is refused with the part that is wrong named (the repository, the revision, the path).

use std::fmt;
use std::str::FromStr;

use super::HttpUrl;

/// A model location.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ModelUri {
    /// A file (or, without `file`, the best file) in a Hugging Face repository.
    HuggingFace {
        /// `owner/name` (or a legacy single-segment name).
        repo: String,
        /// A branch, tag or commit; the repository's `main` when absent.
        revision: Option<String>,
        /// The file's path in the repository (subfolders allowed); chosen when absent.
        file: Option<String>,
    },
    /// A direct download URL.
    Url(String),
}

impl ModelUri {
    /// The revision to fetch: the one named, else `main`.
    pub fn revision(&self) -> &str {
        match self {
            ModelUri::HuggingFace { revision: Some(r), .. } => r,
            _ => "main",
        }
    }
}

const EXPECTED: &str = "expected hf://owner/repo[@revision][:path/in/repo] or an https:// URL";

/// Letters, digits, '-', '_' and '.': what Hugging Face allows in owner and repository names.
fn name_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A relative path of non-empty segments, none `.` or `..` (it becomes a path on disk).
pub(crate) fn path_ok(path: &str) -> bool {
    path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0']))
}

fn parse_hf(s: &str, rest: &str) -> Result<ModelUri, String> {
    let (repo_part, file) = match rest.split_once(':') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (repo, revision) = match repo_part.split_once('@') {
        Some((r, rev)) => (r, Some(rev)),
        None => (repo_part, None),
    };
    let segments: Vec<&str> = repo.split('/').collect();
    if repo.is_empty() || segments.len() > 2 || !segments.iter().all(|seg| name_ok(seg)) {
        return Err(format!(
            "\"{s}\" names no repository: the part before '@' or ':' must be owner/repo (letters, digits, '-', '_', '.')"
        ));
    }
    if let Some(rev) = revision
        && (rev.is_empty() || !path_ok(rev) || !rev.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)))
    {
        return Err(format!("\"{s}\" names an empty or malformed revision after '@' (a branch, tag or commit)"));
    }
    if let Some(f) = file
        && (f.is_empty() || f.starts_with('/') || !path_ok(f))
    {
        return Err(format!(
            "\"{s}\" names an empty or unsafe file after ':' (a path in the repository, without '..' or a leading '/')"
        ));
    }
    Ok(ModelUri::HuggingFace {
        repo: repo.to_string(),
        revision: revision.map(str::to_string),
        file: file.map(str::to_string),
    })
}

impl FromStr for ModelUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("hf://") {
            return parse_hf(s, rest);
        }
        s.parse::<HttpUrl>()
            .map(|u| ModelUri::Url(u.as_str().to_string()))
            .map_err(|_| format!("{EXPECTED}, found \"{s}\""))
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelUri::HuggingFace { repo, revision, file } => {
                write!(f, "hf://{repo}")?;
                if let Some(r) = revision {
                    write!(f, "@{r}")?;
                }
                if let Some(file) = file {
                    write!(f, ":{file}")?;
                }
                Ok(())
            }
            ModelUri::Url(u) => f.write_str(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf(repo: &str, revision: Option<&str>, file: Option<&str>) -> ModelUri {
        ModelUri::HuggingFace { repo: repo.into(), revision: revision.map(Into::into), file: file.map(Into::into) }
    }

    #[test]
    fn every_form_parses_and_prints_back() {
        let cases = [
            ("hf://TheBloke/Mistral-7B-Instruct-v0.2-GGUF", hf("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", None, None)),
            ("hf://a/b:onnx/model.onnx", hf("a/b", None, Some("onnx/model.onnx"))),
            ("hf://a/b@v1.2:model.Q4_K_M.gguf", hf("a/b", Some("v1.2"), Some("model.Q4_K_M.gguf"))),
            ("hf://a/b@refs/pr/1", hf("a/b", Some("refs/pr/1"), None)),
            ("hf://distilbert-base-uncased:model.onnx", hf("distilbert-base-uncased", None, Some("model.onnx"))),
        ];
        for (text, want) in cases {
            let got: ModelUri = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text);
        }
        assert_eq!(hf("a/b", None, None).revision(), "main");
        let url: ModelUri = "https://example.com/m.gguf".parse().unwrap();
        assert_eq!(url, ModelUri::Url("https://example.com/m.gguf".into()));
    }

    #[test]
    fn a_bad_uri_names_the_part_that_is_wrong() {
        let cases = [
            ("hf://", "names no repository"),
            ("hf://:x.gguf", "names no repository"),
            ("hf://a//b", "names no repository"),
            ("hf://a/b/c", "names no repository"),
            ("hf://a/b c", "names no repository"),
            ("hf://a/b@:x.gguf", "malformed revision"),
            ("hf://a/b@../x", "malformed revision"),
            ("hf://a/b:", "unsafe file"),
            ("hf://a/b:../x", "unsafe file"),
            ("hf://a/b:/etc/passwd", "unsafe file"),
            ("hf://a/b:x//y", "unsafe file"),
            ("ftp://x", "expected hf://owner/repo"),
        ];
        for (text, part) in cases {
            let e = text.parse::<ModelUri>().unwrap_err();
            assert!(e.contains(part) && e.contains(text.trim()), "{text}: {e}");
        }
    }
}
