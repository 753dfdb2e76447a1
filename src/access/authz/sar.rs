//! SubjectAccessReview against the apiserver.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::{Api, Client, api::PostParams};

use super::{API_GROUP, Attributes, Authorizer, AuthzError, Decision};

pub struct SubjectAccessReviewer {
    api: Api<SubjectAccessReview>,
    timeout: Duration,
}

impl SubjectAccessReviewer {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self {
            api: Api::all(client),
            timeout,
        }
    }

    /// The review sent for one question: exactly what the apiserver needs, nothing else.
    pub fn review_for(attributes: &Attributes) -> SubjectAccessReview {
        let user = &attributes.user;
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.username.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| user.extra.clone().into_iter().collect()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(attributes.group.into()),
                    version: Some(if attributes.group == API_GROUP {
                        crate::crd::VERSION.into()
                    } else {
                        curio_core::catalog_api::VERSION.into()
                    }),
                    resource: Some(attributes.resource.clone()),
                    verb: Some(attributes.verb.into()),
                    namespace: Some(attributes.namespace.clone()),
                    name: attributes.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

#[async_trait]
impl Authorizer for SubjectAccessReviewer {
    async fn authorize(&self, attributes: &Attributes) -> Result<Decision, AuthzError> {
        let review = Self::review_for(attributes);
        let response = tokio::time::timeout(
            self.timeout,
            self.api.create(&PostParams::default(), &review),
        )
        .await
        .map_err(|_| AuthzError::Timeout)?
        .map_err(|e| AuthzError::Backend {
            source: std::sync::Arc::new(e),
        })?;
        let Some(status) = response.status else {
            return Err(AuthzError::Undecided("review has no status".into()));
        };
        if status.allowed && status.denied != Some(true) {
            Ok(Decision::Allow)
        } else if let Some(error) = status.evaluation_error.filter(|e| !e.is_empty()) {
            // The apiserver could not decide; do not cache a denial built on an error.
            if status.reason.is_none() {
                return Err(AuthzError::Undecided(error));
            }
            Ok(Decision::Deny {
                reason: status.reason.unwrap_or_default(),
            })
        } else {
            Ok(Decision::Deny {
                reason: status.reason.unwrap_or_default(),
            })
        }
    }
}
