//! The webhook's own serving certificate, when no cert-manager provides one: a CA and a leaf
//! for the Service's DNS names. Pure: issue, and decide whether what is stored still serves.

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// How long an issued certificate is valid, and how early it is replaced.
pub const VALIDITY_DAYS: i64 = 365;
pub const RENEW_BEFORE_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("issuing a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("the stored certificate cannot be read: {0}")]
    Unreadable(String),
}

/// PEM texts, as a `kubernetes.io/tls` Secret holds them (plus the CA for the caBundle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn offset(at: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A fresh CA and a serving certificate for `dns_names`, valid from a minute before `now`.
pub fn issue(dns_names: &[String], now: DateTime<Utc>) -> Result<Issued, CertError> {
    issue_named(dns_names, now, "curio-webhook")
}

/// [`issue`] with the CA named `{name}-ca` (names that parse as IP addresses become IP SANs).
pub fn issue_named(
    dns_names: &[String],
    now: DateTime<Utc>,
    name: &str,
) -> Result<Issued, CertError> {
    let not_before = offset(now - chrono::Duration::minutes(1));
    let not_after = offset(now + chrono::Duration::days(VALIDITY_DAYS));

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name}-ca"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(dns_names.to_vec())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names.first().map_or(name, String::as_str),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &ca)?;
    Ok(Issued {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The new CA followed by the first certificate of the previous bundle (its own CA), so a
/// rollover trusts both and bundles never grow past two.
pub fn ca_bundle(new_ca: &str, previous_bundle: &str) -> String {
    const END: &str = "-----END CERTIFICATE-----";
    let previous = previous_bundle
        .find(END)
        .map(|at| &previous_bundle[..at + END.len()])
        .unwrap_or_default()
        .trim();
    if previous.is_empty() {
        return new_ca.to_owned();
    }
    format!("{}\n{previous}\n", new_ca.trim_end())
}

/// Why a stored certificate must be replaced, or `None` if it still serves.
pub fn renewal_reason(
    cert_pem: &str,
    dns_names: &[String],
    now: DateTime<Utc>,
) -> Result<Option<String>, CertError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| CertError::Unreadable(e.to_string()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| CertError::Unreadable(e.to_string()))?;
    let not_after = cert.validity().not_after.timestamp();
    if not_after - now.timestamp() < RENEW_BEFORE_DAYS * 86_400 {
        return Ok(Some(format!("expires within {RENEW_BEFORE_DAYS} days")));
    }
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(missing) = dns_names.iter().find(|n| !names.contains(n)) {
        return Ok(Some(format!("does not name {missing}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_serve_until_renewal_is_due() {
        let names = vec!["curio-webhook.curio.svc".to_owned()];
        let now = Utc::now();
        let issued = issue(&names, now).unwrap();
        assert!(issued.ca_pem.contains("BEGIN CERTIFICATE"));
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        assert_eq!(renewal_reason(&issued.cert_pem, &names, now).unwrap(), None);
        let later = now + chrono::Duration::days(VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1);
        assert!(
            renewal_reason(&issued.cert_pem, &names, later)
                .unwrap()
                .is_some_and(|r| r.contains("expires"))
        );
        let with_ip = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let issued_ip = issue(&with_ip, now).unwrap();
        assert_eq!(
            renewal_reason(&issued_ip.cert_pem, &with_ip, now).unwrap(),
            None
        );
        let other = vec!["curio-webhook.other.svc".to_owned()];
        assert!(
            renewal_reason(&issued.cert_pem, &other, now)
                .unwrap()
                .is_some_and(|r| r.contains("does not name"))
        );
        assert!(renewal_reason("not a certificate", &names, now).is_err());

        // A rollover bundle trusts the new CA and the previous one, and no more.
        let next = issue(&names, now).unwrap();
        let bundle = ca_bundle(&next.ca_pem, &issued.ca_pem);
        assert!(bundle.starts_with(next.ca_pem.trim_end()));
        assert!(bundle.contains(issued.ca_pem.trim()));
        let third = issue(&names, now).unwrap();
        let rolled = ca_bundle(&third.ca_pem, &bundle);
        assert_eq!(rolled.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(rolled.contains(next.ca_pem.trim()) && !rolled.contains(issued.ca_pem.trim()));
    }
}
