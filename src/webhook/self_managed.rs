//! The self-managed certificate path: the CA and serving certificate live in a Secret that
//! every replica shares; whichever replica finds it missing or due for renewal issues a new
//! one (a create or replace guarded by resourceVersion, so racing replicas converge on one),
//! and each replica patches the ValidatingWebhookConfiguration's `caBundle` to match.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use k8s_openapi::{
    ByteString,
    api::{admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::Secret},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio_util::sync::CancellationToken;

use super::{
    certs::{self, Issued},
    tls::{SwappableCert, certified_key},
};

#[derive(Clone, Debug)]
pub struct SelfManaged {
    pub namespace: String,
    pub secret_name: String,
    pub dns_names: Vec<String>,
    pub webhook_configuration: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Cert(#[from] certs::CertError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::server::ServeError),
}

const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

fn stored(secret: &Secret) -> Option<Issued> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Issued {
        ca_pem: text(CA_KEY)?,
        cert_pem: text(CERT_KEY)?,
        key_pem: text(KEY_KEY)?,
    })
}

fn secret_data(issued: &Issued) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            CA_KEY.into(),
            ByteString(issued.ca_pem.clone().into_bytes()),
        ),
        (
            CERT_KEY.into(),
            ByteString(issued.cert_pem.clone().into_bytes()),
        ),
        (
            KEY_KEY.into(),
            ByteString(issued.key_pem.clone().into_bytes()),
        ),
    ])
}

impl SelfManaged {
    /// The certificate to serve: the stored one if it still serves, else a new one stored.
    pub async fn ensure(&self, client: &Client) -> Result<Issued, SelfManagedError> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        for _ in 0..3 {
            let existing = secrets.get_opt(&self.secret_name).await?;
            let current = existing.as_ref().and_then(stored);
            if let Some(current) = &current {
                match certs::renewal_reason(&current.cert_pem, &self.dns_names, Utc::now()) {
                    Ok(None) => return Ok(current.clone()),
                    Ok(Some(why)) => {
                        tracing::info!(secret = %self.secret_name, %why, "renewing the webhook certificate")
                    }
                    Err(e) => {
                        tracing::warn!(secret = %self.secret_name, error = %e, "replacing an unreadable webhook certificate")
                    }
                }
            }
            let mut issued = certs::issue(&self.dns_names, Utc::now())?;
            if let Some(previous) = &current {
                // Replicas still serving the old certificate must keep passing the apiserver's
                // check until they pick up the new one: trust both CAs meanwhile.
                issued.ca_pem = certs::ca_bundle(&issued.ca_pem, &previous.ca_pem);
            }
            let result = match existing {
                Some(mut secret) => {
                    secret.data = Some(secret_data(&issued));
                    secrets
                        .replace(&self.secret_name, &PostParams::default(), &secret)
                        .await
                }
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(self.secret_name.clone()),
                            namespace: Some(self.namespace.clone()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/name".into(),
                                "curio".into(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        type_: Some("kubernetes.io/tls".into()),
                        data: Some(secret_data(&issued)),
                        ..Secret::default()
                    };
                    secrets.create(&PostParams::default(), &secret).await
                }
            };
            match result {
                Ok(_) => return Ok(issued),
                // Another replica wrote first: use what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let secret = secrets.get(&self.secret_name).await?;
        stored(&secret).ok_or_else(|| {
            SelfManagedError::Cert(certs::CertError::Unreadable(format!(
                "Secret {}/{} lacks {CA_KEY}, {CERT_KEY} or {KEY_KEY}",
                self.namespace, self.secret_name
            )))
        })
    }

    /// Sets every webhook's `caBundle` in the configuration to `ca_pem`, if it differs.
    pub async fn patch_ca_bundle(
        &self,
        client: &Client,
        ca_pem: &str,
    ) -> Result<bool, SelfManagedError> {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let Some(configuration) = api.get_opt(&self.webhook_configuration).await? else {
            tracing::warn!(name = %self.webhook_configuration, "ValidatingWebhookConfiguration not found; caBundle not set");
            return Ok(false);
        };
        let bundle = ByteString(ca_pem.as_bytes().to_vec());
        let mut configuration = configuration;
        let webhooks = configuration.webhooks.get_or_insert_with(Vec::new);
        if webhooks
            .iter()
            .all(|w| w.client_config.ca_bundle.as_ref() == Some(&bundle))
        {
            return Ok(false);
        }
        for webhook in webhooks.iter_mut() {
            webhook.client_config.ca_bundle = Some(bundle.clone());
        }
        // Guarded by the resourceVersion read above; a conflict is retried next period.
        api.replace(
            &self.webhook_configuration,
            &PostParams::default(),
            &configuration,
        )
        .await?;
        Ok(true)
    }

    /// Ensures the certificate and the caBundle now, then every `period` until `stop`,
    /// swapping a renewed certificate into `target`.
    pub async fn maintain(
        self,
        client: Client,
        target: Arc<SwappableCert>,
        period: Duration,
        stop: CancellationToken,
    ) {
        let mut served: Option<Issued> = None;
        loop {
            match self.ensure(&client).await {
                Ok(issued) => {
                    if served.as_ref() != Some(&issued) {
                        match certified_key(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()) {
                            Ok(key) => {
                                target.set(key);
                                served = Some(issued.clone());
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "the webhook certificate does not load")
                            }
                        }
                    }
                    if let Err(e) = self.patch_ca_bundle(&client, &issued.ca_pem).await {
                        tracing::warn!(error = %e, "patching the webhook caBundle failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "maintaining the webhook certificate failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
