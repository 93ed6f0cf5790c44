//! Multipart uploads a killed writer left in S3: the store keeps (and bills) their parts until the upload is
//! completed or aborted. `object_store` aborts uploads but cannot list them; they are listed here by S3's
//! ListMultipartUploads, sent to a URL the store itself presigns (its endpoint, credentials and signature, not a
//! second copy of them), and aborted through the store.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::AmazonS3;
use object_store::client::{ClientOptions, HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::RetryConfig;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// How long the URL of one listing request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// The multipart uploads of one S3 bucket.
#[derive(Debug)]
pub(super) struct S3Uploads {
    store: Arc<AmazonS3>,
    /// Sends the presigned listing requests; made on first use.
    client: OnceLock<HttpClient>,
    options: ClientOptions,
    /// The store's retries, which listing requests follow too.
    retry: RetryConfig,
}

/// An upload in progress (or left by a killed writer): its object's key and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The key of the object it would create.
    pub key: String,
    /// Its id, which aborts it.
    pub id: String,
}

/// One page of S3's answer to ListMultipartUploads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    upload: Vec<UploadEntry>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

impl ListMultipartUploadsResult {
    /// The markers of the page after this one, asked for with `asked`; `None` at the end of the listing. A
    /// server that names the same page again would keep a listing going: it ends there.
    fn next(&self, asked: &Option<(String, String)>) -> Option<(String, String)> {
        let next = self.next_key_marker.clone().zip(self.next_upload_id_marker.clone());
        (self.is_truncated && next != *asked).then_some(next).flatten()
    }
}

/// Why a listing request failed.
enum Failure {
    /// The network or the server: worth asking again.
    Transient(String),
    /// Asking again would fail again.
    Final(String),
    /// The bucket does not exist.
    NoBucket,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
}

impl S3Uploads {
    /// The uploads of `store`, listed with a client of `options` (the store's timeouts) and `retry` (its
    /// retries).
    pub(super) fn new(store: Arc<AmazonS3>, options: ClientOptions, retry: RetryConfig) -> S3Uploads {
        // The URLs are the store's own, so their scheme is one the store's configuration allowed.
        S3Uploads { store, client: OnceLock::new(), options: options.with_allow_http(true), retry }
    }

    fn client(&self) -> Result<&HttpClient> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = ReqwestConnector::default()
            .connect(&self.options)
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot make an HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The uploads of keys beginning with `prefix`, in the store's order. `None` where the store refuses to
    /// list them (a credential without the permission, a server without the request).
    pub(super) async fn list(&self, prefix: &str) -> Result<Option<Vec<Upload>>> {
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", String::new()), ("prefix", prefix.to_owned())];
            if let Some((key, id)) = markers.clone() {
                query.extend([("key-marker", key), ("upload-id-marker", id)]);
            }
            let Some(page) = self.list_page(query).await? else { return Ok(None) };
            let next = page.next(&markers);
            uploads.extend(page.upload.into_iter().map(|entry| Upload { key: entry.key, id: entry.upload_id }));
            match next {
                Some(next) => markers = Some(next),
                None => return Ok(Some(uploads)),
            }
        }
    }

    /// One page of the listing, asked again after a failure of the network or the server (5xx, 429) as the
    /// store's own requests are.
    async fn list_page(&self, query: Vec<(&str, String)>) -> Result<Option<ListMultipartUploadsResult>> {
        let started = std::time::Instant::now();
        let mut backoff = self.retry.backoff.init_backoff;
        let mut retries = 0;
        loop {
            match self.ask_page(query.clone()).await {
                Err(Failure::Transient(_))
                    if retries < self.retry.max_retries && started.elapsed() < self.retry.retry_timeout =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.mul_f64(self.retry.backoff.base).min(self.retry.backoff.max_backoff);
                    retries += 1;
                }
                Err(Failure::Transient(message) | Failure::Final(message)) => {
                    return Err(Error::new(ErrorKind::Unavailable, format!("listing multipart uploads: {message}")))
                }
                Err(Failure::NoBucket) => return Err(Error::not_found("no such bucket")),
                Ok(page) => return Ok(page),
            }
        }
    }

    async fn ask_page(
        &self,
        query: Vec<(&str, String)>,
    ) -> std::result::Result<Option<ListMultipartUploadsResult>, Failure> {
        let options = SignedUrlOptions::default().with_query(query);
        let url = self
            .store
            .signed_url_opts(http::Method::GET, &Key::from(""), SIGNED_FOR, &options)
            .await
            .map_err(|e| Failure::Final(e.to_string()))?;
        let request = http::Request::get(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(|e| Failure::Final(e.to_string()))?;
        let client = self.client().map_err(|e| Failure::Final(e.to_string()))?;
        let response = client.execute(request).await.map_err(|e| Failure::Transient(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.into_body().bytes().await.map_err(|e| Failure::Transient(e.to_string()))?;
        let answer = || format!("status {status}: {}", String::from_utf8_lossy(&body));
        match status {
            200 => {}
            // A missing bucket is the caller's error to report, where it writes.
            404 => return Err(Failure::NoBucket),
            429 | 500..=599 if status != 501 => return Err(Failure::Transient(answer())),
            // Not allowed to list (s3:ListBucketMultipartUploads), or a server that does not offer the request:
            // the uploads are left to the bucket's lifecycle rules.
            _ => return Ok(None),
        }
        let page =
            quick_xml::de::from_reader(body.as_ref()).map_err(|e| Failure::Final(format!("unreadable answer: {e}")))?;
        Ok(Some(page))
    }

    /// Aborts `upload`: its parts are deleted. One already gone is not an error.
    pub(super) async fn abort(&self, upload: &Upload) -> object_store::Result<()> {
        let key = Key::parse(&upload.key)?;
        match self.store.abort_multipart(&key, &upload.id).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_the_listing_are_read() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>run/model.ckpt-2.index</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>run/model.ckpt-1.data-00000-of-00001</Key><UploadId>id1</UploadId>
    <Initiated>2026-12-06T15:00:00.000Z</Initiated></Upload>
  <Upload><Key>run/model.ckpt-2.index</Key><UploadId>id2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_reader(&xml[..]).unwrap();
        let keys: Vec<_> = page.upload.iter().map(|u| (u.key.as_str(), u.upload_id.as_str())).collect();
        assert_eq!(keys, [("run/model.ckpt-1.data-00000-of-00001", "id1"), ("run/model.ckpt-2.index", "id2")]);
        assert!(page.is_truncated);
        let next = Some(("run/model.ckpt-2.index".to_owned(), "id2".to_owned()));
        assert_eq!(page.next(&None), next);
        assert_eq!(page.next(&next), None, "the same page named again ends the listing");
        let empty = br#"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_reader(&empty[..]).unwrap();
        assert!(page.upload.is_empty() && !page.is_truncated);
    }
}
