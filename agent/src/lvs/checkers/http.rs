//! HTTP_GET and SSL_GET, as keepalived's check_http.c: a GET of each `url`
//! (HTTP/1.0 unless `http_protocol 1.1`, `Host` the virtualhost or the
//! connect address, `Connection: close`), judged by its status code
//! (default 200-299), the MD5 `digest` of its body and its `regex`; every
//! url must pass. SSL_GET does not verify the real's certificate (keepalived
//! does not either: the check is about the service, not its identity) and
//! sends SNI only with `enable_sni`. Through hyper and rustls.

use std::sync::Arc;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use super::Outcome;
use crate::config::lvs::{Checker, Url};

/// Bodies above this fail the check (keepalived reads them whole too).
const MAX_BODY: usize = 16 << 20;

pub struct Http<'a> {
    /// SSL_GET: the TLS settings (`tls_config`), None for HTTP_GET.
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
    pub urls: &'a [Url],
    pub virtualhost: Option<&'a str>,
    pub http11: bool,
    pub sni: Option<&'a str>,
}

pub async fn check(c: &Checker, h: &Http<'_>) -> Outcome {
    for url in h.urls {
        let r = tokio::time::timeout(c.connect_timeout, get(c, h, url)).await;
        let verdict = match r {
            Err(_) => Err(format!("no answer within {:?}", c.connect_timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok((status, body))) => judge(url, status, &body),
        };
        if let Err(why) = verdict {
            return Outcome::Down(format!(
                "{} {}{}: {why}",
                if h.tls.is_some() {
                    "SSL_GET"
                } else {
                    "HTTP_GET"
                },
                c.connect,
                url.path
            ));
        }
    }
    Outcome::Up
}

/// keepalived's order: the status code, then the digest, then the regex.
pub fn judge(url: &Url, status: u16, body: &[u8]) -> Result<(), String> {
    if !url
        .status
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&status))
    {
        return Err(format!("status code {status}"));
    }
    if let Some(want) = &url.digest {
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if &got != want {
            return Err(format!("digest {got}, expected {want}"));
        }
    }
    if let Some(re) = &url.regex {
        // Checked at load: it compiles.
        let matched = regex_lite::Regex::new(re)
            .map(|r| r.is_match(&String::from_utf8_lossy(body)))
            .unwrap_or(false);
        if matched == url.regex_no_match {
            return Err(format!(
                "body {} regex `{re}`",
                if matched { "matches" } else { "does not match" }
            ));
        }
    }
    Ok(())
}

async fn get(c: &Checker, h: &Http<'_>, url: &Url) -> Result<(u16, Bytes), String> {
    let tcp = super::tcp::connect(c)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let host = url
        .virtualhost
        .as_deref()
        .or(h.virtualhost)
        .map(str::to_owned)
        .unwrap_or_else(|| c.connect.to_string());
    if let Some(tls) = h.tls {
        let name = match h.sni {
            Some(n) => rustls::pki_types::ServerName::try_from(n.to_owned())
                .map_err(|e| format!("sni_name {n}: {e}"))?,
            None => rustls::pki_types::ServerName::IpAddress(c.connect.ip().into()),
        };
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        request(stream, &host, url, h.http11).await
    } else {
        request(tcp, &host, url, h.http11).await
    }
}

async fn request<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    host: &str,
    url: &Url,
    http11: bool,
) -> Result<(u16, Bytes), String> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(url.path.as_str())
        .version(if http11 {
            hyper::Version::HTTP_11
        } else {
            hyper::Version::HTTP_10
        })
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "KeepAliveClient")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    driver.abort();
    Ok((status, body))
}

/// SSL_GET's TLS settings: any server certificate (as keepalived), and the
/// `SSL` block's client certificate when one is set.
pub fn tls_config(
    ssl: Option<&crate::config::lvs::SslOptions>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use anyhow::Context as _;
    use rustls_pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
    let mut cfg = match ssl.and_then(|s| s.certificate.as_ref().zip(s.key.as_ref())) {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("SSL certificate {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("SSL key {} (unencrypted PEM)", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("SSL certificate and key do not match")?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.enable_sni = true;
    Ok(Arc::new(cfg))
}

/// keepalived's SSL_GET accepts any certificate; signatures are still
/// checked, so the handshake is a real one.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url {
            path: "/".into(),
            digest: None,
            status: vec![(200, 299)],
            virtualhost: None,
            regex: None,
            regex_no_match: false,
        }
    }

    #[test]
    fn status_digest_and_regex_judge_the_answer() {
        assert!(judge(&url(), 204, b"").is_ok());
        assert!(judge(&url(), 503, b"").unwrap_err().contains("503"));
        let mut u = url();
        // MD5("hello\n"), as `genhash` prints it.
        u.digest = Some("b1946ac92492d2347c6235b4d2611184".into());
        assert!(judge(&u, 200, b"hello\n").is_ok());
        assert!(judge(&u, 200, b"hullo\n").unwrap_err().contains("digest"));
        let mut u = url();
        u.regex = Some("^ok".into());
        assert!(judge(&u, 200, b"ok fine").is_ok());
        assert!(judge(&u, 200, b"not ok").is_err());
        u.regex_no_match = true;
        assert!(judge(&u, 200, b"not ok").is_ok());
    }
}
