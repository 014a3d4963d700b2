//! Pagination styles, as reusable pieces: each says, from one page, where the next one is.
//! The page loop (`fetch::Pages`) follows them, detects a cursor that does not advance and
//! caps pages per run; where to start and when to stop belong to the feed (`sources::feed`).

use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

#[derive(Debug, Clone)]
pub enum Paging {
    /// One page only.
    Single,
    /// `Link: <…>; rel="next"` (GitHub, Okta), followed exactly as given.
    Link,
    /// `has_more` and the last item's id as `starting_after` (Stripe).
    CursorField {
        items: &'static str,
        has_more: &'static str,
        id: &'static str,
        param: &'static str,
    },
    /// A token in the body sent back as a query parameter: `nextPageToken` (Google),
    /// `NextToken` (AWS), `response_metadata.next_cursor` (Slack).
    Token {
        field: &'static str,
        param: &'static str,
    },
    /// A URL in the body: `nextRecordsUrl` (Salesforce), `@odata.nextLink` (Microsoft Graph).
    NextUrl { field: &'static str },
    /// `offset` advanced by the page size while pages are full (Oracle Fusion).
    Offset {
        items: &'static str,
        param: &'static str,
        size: usize,
    },
}

impl Paging {
    /// The next page after `current`, or `None` on the last one. The body is read only by
    /// the styles that keep their cursor in it.
    pub fn next(&self, current: &Url, headers: &HeaderMap, body: &[u8]) -> Option<Url> {
        if matches!(self, Paging::Single | Paging::Link) {
            return self.next_in(current, headers, &Value::Null);
        }
        let body: Value = serde_json::from_slice(body).ok()?;
        self.next_in(current, headers, &body)
    }

    fn next_in(&self, current: &Url, headers: &HeaderMap, body: &Value) -> Option<Url> {
        match self {
            Paging::Single => None,
            Paging::Link => headers
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(link_next)
                .and_then(|next| current.join(&next).ok()),
            Paging::CursorField {
                items,
                has_more,
                id,
                param,
            } => {
                if !path(body, has_more)
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    return None;
                }
                let last = path(body, items)?.as_array()?.last()?;
                let last_id = scalar(path(last, id)?)?;
                Some(with_param(current, param, &last_id))
            }
            Paging::Token { field, param } => {
                let token = scalar(path(body, field)?)?;
                (!token.is_empty()).then(|| with_param(current, param, &token))
            }
            Paging::NextUrl { field } => {
                let next = path(body, field)?.as_str()?;
                (!next.is_empty())
                    .then(|| current.join(next).ok())
                    .flatten()
            }
            Paging::Offset { items, param, size } => {
                let n = path(body, items)?.as_array()?.len();
                if n < *size || n == 0 {
                    return None;
                }
                let at: usize = current
                    .query_pairs()
                    .find(|(k, _)| k == param)
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                Some(with_param(current, param, &(at + n).to_string()))
            }
        }
    }
}

/// A dotted path into a JSON value (`response_metadata.next_cursor`); a key that itself
/// contains a dot (`@odata.nextLink`) is looked up whole first.
pub fn path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(v) = value.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `url` with `param` set to `value`, other parameters kept in their order.
pub fn with_param(url: &Url, param: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut next = url.clone();
    {
        let mut q = next.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(param, value);
    }
    next
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
pub fn link_next(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..].find('<').map_or(rest.len(), |i| close + i);
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = &rest[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn github_link_header() {
        let h = r#"<https://api.github.com/orgs/acme/hooks/1/deliveries?per_page=100&cursor=v1_9>; rel="next", <https://api.github.com/orgs/acme/hooks/1/deliveries?per_page=100>; rel="first""#;
        assert_eq!(
            link_next(h).as_deref(),
            Some("https://api.github.com/orgs/acme/hooks/1/deliveries?per_page=100&cursor=v1_9")
        );
        assert_eq!(link_next(r#"<https://x/y?page=1>; rel="prev""#), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            HeaderValue::from_static(r#"</next?a=1>; rel="next""#),
        );
        assert_eq!(
            Paging::Link
                .next(&url("https://h/first"), &headers, b"[]")
                .map(String::from),
            Some("https://h/next?a=1".to_string())
        );
    }

    #[test]
    fn stripe_cursor_field() {
        let p = Paging::CursorField {
            items: "data",
            has_more: "has_more",
            id: "id",
            param: "starting_after",
        };
        let first = url("https://api.stripe.com/v1/events?limit=2");
        let body = json!({"data": [{"id": "evt_1"}, {"id": "evt_2"}], "has_more": true});
        let next = p.next_in(&first, &HeaderMap::new(), &body).expect("next");
        assert_eq!(
            next.as_str(),
            "https://api.stripe.com/v1/events?limit=2&starting_after=evt_2"
        );
        let last = json!({"data": [{"id": "evt_3"}], "has_more": false});
        assert_eq!(p.next_in(&next, &HeaderMap::new(), &last), None);
    }

    #[test]
    fn tokens_urls_and_offsets() {
        let slack = Paging::Token {
            field: "response_metadata.next_cursor",
            param: "cursor",
        };
        let u = url("https://api.slack.com/audit/v1/logs?limit=200");
        let body = json!({"entries": [], "response_metadata": {"next_cursor": "abc="}});
        assert_eq!(
            slack
                .next_in(&u, &HeaderMap::new(), &body)
                .map(String::from),
            Some("https://api.slack.com/audit/v1/logs?limit=200&cursor=abc%3D".to_string())
        );
        let empty = json!({"response_metadata": {"next_cursor": ""}});
        assert_eq!(slack.next_in(&u, &HeaderMap::new(), &empty), None);

        let graph = Paging::NextUrl {
            field: "@odata.nextLink",
        };
        let body = json!({"@odata.nextLink": "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken=x"});
        assert!(graph.next_in(&u, &HeaderMap::new(), &body).is_some());
        let sf = Paging::NextUrl {
            field: "nextRecordsUrl",
        };
        let body = json!({"nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-2000"});
        assert_eq!(
            sf.next_in(
                &url("https://acme.my.salesforce.com/services/data/v62.0/query?q=x"),
                &HeaderMap::new(),
                &body
            )
            .map(String::from),
            Some(
                "https://acme.my.salesforce.com/services/data/v62.0/query/01gD0000002HU6KIAW-2000"
                    .to_string()
            )
        );

        let offset = Paging::Offset {
            items: "items",
            param: "offset",
            size: 2,
        };
        let u = url("https://fa.example/api?limit=2");
        let full = json!({"items": [1, 2]});
        let n1 = offset.next_in(&u, &HeaderMap::new(), &full).expect("next");
        assert_eq!(n1.as_str(), "https://fa.example/api?limit=2&offset=2");
        let n2 = offset.next_in(&n1, &HeaderMap::new(), &full).expect("next");
        assert_eq!(n2.as_str(), "https://fa.example/api?limit=2&offset=4");
        assert_eq!(
            offset.next_in(&n2, &HeaderMap::new(), &json!({"items": [1]})),
            None
        );
    }
}
