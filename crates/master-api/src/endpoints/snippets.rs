//! `GET /snippet` (paged), `GET /snippet/{canonical}`, `POST /snippet/{canonical}`.

use futures::{Stream, StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde_json::json;

use crate::transport::{Request, Segment};
use crate::{Client, Error, InstallAccess, Snippet, SnippetPage};

impl Client {
    /// Every snippet the account owns: requests page 1, then follows `nextPage` until it is
    /// `null`. Pages are fetched lazily as the stream is polled.
    ///
    /// The stream ends after the first error. A `nextPage` that does not move forward is
    /// reported as [`Error::Decode`] rather than followed, so a misbehaving server cannot make
    /// it loop forever.
    pub fn snippets(&self) -> impl Stream<Item = Result<Snippet, Error>> + Send + 'static {
        let client = self.clone();
        stream::try_unfold(Some(1_i64), move |next| {
            let client = client.clone();
            async move {
                let Some(page) = next else {
                    return Ok(None);
                };
                let SnippetPage {
                    next_page, items, ..
                } = client.snippets_page(page).await?;
                let following = match next_page {
                    Some(next) if next > page => Some(next),
                    Some(_) => {
                        return Err(Error::Decode {
                            path: "nextPage".to_owned(),
                            message: format!("does not advance past page {page}"),
                        });
                    }
                    None => None,
                };
                Ok(Some((stream::iter(items).map(Ok), following)))
            }
        })
        .try_flatten()
    }

    /// `GET /snippet?page={page}`: one page of the account's snippets (`page` starts at 1).
    pub async fn snippets_page(&self, page: i64) -> Result<SnippetPage, Error> {
        if page < 1 {
            return Err(Error::InvalidArgument {
                name: "page",
                reason: "pages start at 1",
            });
        }
        self.call(Request {
            method: Method::GET,
            template: "/snippet",
            segments: vec![Segment::Fixed("snippet")],
            page: Some(page),
            body: None,
            idempotent: true,
            canonical: None,
        })
        .await
    }

    /// `GET /snippet/{canonical}`: one snippet.
    pub async fn snippet(&self, canonical: &str) -> Result<Snippet, Error> {
        self.call(Request {
            method: Method::GET,
            template: "/snippet/{canonical}",
            segments: snippet_path(canonical),
            page: None,
            body: None,
            idempotent: true,
            canonical: Some(canonical),
        })
        .await
    }

    /// `POST /snippet/{canonical}`: sets who may install the snippet and the text shown with it.
    /// Both fields are always sent, as the spec requires. Idempotent (absolute values), so it is
    /// retried like a GET. Returns the updated snippet.
    pub async fn update_snippet_access(
        &self,
        canonical: &str,
        access: InstallAccess,
        description: &str,
    ) -> Result<Snippet, Error> {
        self.call(Request {
            method: Method::POST,
            template: "/snippet/{canonical}",
            segments: snippet_path(canonical),
            page: None,
            body: Some(json!({
                "install_access": access.as_str(),
                "install_access_description": description,
            })),
            idempotent: true,
            canonical: Some(canonical),
        })
        .await
    }
}

pub(super) fn snippet_path(canonical: &str) -> Vec<Segment<'_>> {
    vec![
        Segment::Fixed("snippet"),
        Segment::Value {
            name: "canonical",
            value: canonical,
        },
    ]
}
