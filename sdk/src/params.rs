//! Parameter errors: JSON Pointers to the field that is wrong.

use crate::ParamError;

/// A parameter error at `path`, a JSON Pointer into the parameters document
/// (`"/slow"`, `"/entry/all/0"`; `""` for the whole document).
pub fn param_error(path: impl Into<String>, message: impl Into<String>) -> ParamError {
    ParamError {
        path: path.into(),
        message: message.into(),
    }
}

/// Escape one JSON Pointer reference token (RFC 6901).
fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Turn the path serde reports for a deserialisation error into a JSON Pointer.
pub(crate) fn pointer_from_serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&escape_token(key));
            }
            Segment::Enum { variant } => {
                pointer.push('/');
                pointer.push_str(&escape_token(variant));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        period: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(rename = "a/b")]
        items: Vec<Inner>,
    }

    #[test]
    fn serde_paths_become_json_pointers() {
        let json = r#"{"a/b": [{"period": 1}, {"period": "x"}]}"#;
        let mut de = serde_json::Deserializer::from_str(json);
        let err = serde_path_to_error::deserialize::<_, Outer>(&mut de).unwrap_err();
        assert_eq!(pointer_from_serde_path(err.path()), "/a~1b/1/period");
    }
}
