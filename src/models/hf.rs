//! Hugging Face, as the model cache talks to it: the endpoint (huggingface.co, a mirror, or a
//! local server in tests), the URLs of a repository's API entry and of a file at a revision,
//! which hosts may receive the token (only the endpoint's own: the reference sent it to every
//! host), and which file of a repository an `hf://owner/repo` URI means (protocol §11.1).

/// The public Hugging Face endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A Hugging Face endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: reqwest::Url,
}

impl Endpoint {
    /// The endpoint at `url` (`https://huggingface.co`, `http://127.0.0.1:8080`, a mirror's
    /// base URL, with or without a path).
    ///
    /// # Errors
    /// Not an http(s) URL with a host.
    pub fn new(url: &str) -> Result<Endpoint, String> {
        let mut base = reqwest::Url::parse(url.trim()).map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!("\"{url}\" is not an http:// or https:// URL with a host"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Endpoint { base })
    }

    /// `GET` this for the repository's files (`siblings`) at `revision`.
    pub fn api_url(&self, repo: &str, revision: &str) -> String {
        let mut path = format!("api/models/{}", encode_path(repo));
        if revision != "main" {
            path.push_str(&format!("/revision/{}", encode_segment(revision)));
        }
        self.join(&path)
    }

    /// The download URL of `file` (a path in the repository) at `revision`.
    pub fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> String {
        self.join(&format!("{}/resolve/{}/{}", encode_path(repo), encode_segment(revision), encode_path(file)))
    }

    /// Whether a request to `url` may carry the Hugging Face token: only one to this
    /// endpoint's own scheme, host and port.
    pub fn may_receive_token(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| {
            u.scheme() == self.base.scheme()
                && u.host_str() == self.base.host_str()
                && u.port_or_known_default() == self.base.port_or_known_default()
        })
    }

    fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-encodes each segment of a `/`-separated path.
fn encode_path(s: &str) -> String {
    s.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// The GGUF quantizations preferred, best first, for an `hf://owner/repo` URI.
const GGUF_PREFERENCE: &[&str] = &["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q8_0"];

/// The file an `hf://owner/repo` URI means, from the repository's file list (§11.1): a GGUF
/// (preferring Q4_K_M, Q4_K_S, Q5_K_M, Q8_0, else the first), then ONNX (`model.onnx`,
/// `onnx/model.onnx`, any), then safetensors (`model.safetensors`,
/// `diffusion_pytorch_model.safetensors`), then `pytorch_model.bin`, then the first weights
/// file of any of these kinds.
pub fn choose_file(files: &[String]) -> Option<&str> {
    let ends = |f: &&String, ext: &str| f.to_ascii_lowercase().ends_with(ext);
    let named = |name: &str| files.iter().find(|f| f.as_str() == name);
    let ggufs: Vec<&String> = files.iter().filter(|f| ends(f, ".gguf")).collect();
    let gguf = GGUF_PREFERENCE
        .iter()
        .find_map(|q| ggufs.iter().find(|f| f.contains(q)).copied())
        .or_else(|| ggufs.first().copied());
    gguf.or_else(|| named("model.onnx"))
        .or_else(|| named("onnx/model.onnx"))
        .or_else(|| files.iter().find(|f| ends(f, ".onnx")))
        .or_else(|| named("model.safetensors"))
        .or_else(|| named("diffusion_pytorch_model.safetensors"))
        .or_else(|| named("pytorch_model.bin"))
        .or_else(|| files.iter().find(|f| [".bin", ".safetensors", ".pt"].iter().any(|e| ends(f, e))))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls_follow_the_hugging_face_layout_on_any_endpoint() {
        let hf = Endpoint::new(DEFAULT_ENDPOINT).unwrap();
        assert_eq!(
            hf.api_url("TheBloke/TinyLlama-GGUF", "main"),
            "https://huggingface.co/api/models/TheBloke/TinyLlama-GGUF"
        );
        assert_eq!(hf.api_url("a/b", "refs/pr/1"), "https://huggingface.co/api/models/a/b/revision/refs%2Fpr%2F1");
        assert_eq!(
            hf.resolve_url("a/b", "main", "onnx/model v2.onnx"),
            "https://huggingface.co/a/b/resolve/main/onnx/model%20v2.onnx"
        );
        let mirror = Endpoint::new("http://127.0.0.1:8080/hf").unwrap();
        assert_eq!(mirror.resolve_url("a/b", "v1", "m.gguf"), "http://127.0.0.1:8080/hf/a/b/resolve/v1/m.gguf");
        assert!(Endpoint::new("ftp://x").is_err() && Endpoint::new("not a url").is_err());
    }

    #[test]
    fn the_token_goes_only_to_the_endpoint_itself() {
        let hf = Endpoint::new(DEFAULT_ENDPOINT).unwrap();
        assert!(hf.may_receive_token("https://huggingface.co/a/b/resolve/main/m.gguf"));
        assert!(hf.may_receive_token("https://huggingface.co:443/api/models/a/b"));
        for other in [
            "https://cdn-lfs.huggingface.co/x",
            "http://huggingface.co/a",
            "https://huggingface.co.evil.example/a",
            "https://example.com/m.gguf",
            "not a url",
        ] {
            assert!(!hf.may_receive_token(other), "{other}");
        }
    }

    #[test]
    fn the_best_file_of_a_repository_is_chosen_in_the_documented_order() {
        let gguf = files(&["README.md", "m.Q8_0.gguf", "m.Q4_K_S.gguf", "m.Q4_K_M.gguf"]);
        assert_eq!(choose_file(&gguf), Some("m.Q4_K_M.gguf"));
        assert_eq!(choose_file(&files(&["a.Q2_K.gguf", "b.Q3_K.gguf"])), Some("a.Q2_K.gguf"));
        assert_eq!(choose_file(&files(&["onnx/model.onnx", "model.onnx"])), Some("model.onnx"));
        assert_eq!(choose_file(&files(&["x/encoder.onnx", "model.safetensors"])), Some("x/encoder.onnx"));
        let diffusers = files(&["unet/diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors"]);
        assert_eq!(choose_file(&diffusers), Some("diffusion_pytorch_model.safetensors"));
        assert_eq!(choose_file(&files(&["config.json", "pytorch_model.bin"])), Some("pytorch_model.bin"));
        assert_eq!(choose_file(&files(&["weights.pt"])), Some("weights.pt"));
        assert_eq!(choose_file(&files(&["README.md", "config.json"])), None);
    }
}
