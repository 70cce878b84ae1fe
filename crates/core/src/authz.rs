//! Authorization policy at the receiving sidecar, with Istio's
//! `AuthorizationPolicy` semantics (<https://istio.io/latest/docs/reference/config/security/authorization-policy/>):
//!
//! - A workload's policies are evaluated together. If any `deny` policy
//!   matches, the request is denied (deny wins).
//! - Otherwise, if no `allow` policy selects the workload, the request is
//!   allowed (default allow).
//! - Otherwise it is allowed only if some `allow` policy matches.
//!
//! A policy matches when one of its rules matches. A policy with no
//! `rules` field matches nothing, so an `allow` policy without rules
//! denies every request (Istio's "deny all"); `rules = [{}]` matches every
//! request (Istio's "allow all"). A rule matches when one of its `from`
//! sources matches (or it has none) and one of its `to` operations matches
//! (or it has none). Within a source or an operation every field given must
//! match: a positive list matches when one of its values matches, a `not_`
//! list when none does.
//!
//! Values match as in Istio: exactly, or as a prefix (`"/api/*"`), a
//! suffix (`"*.png"`), or `"*"` (any non-empty value). A request without a
//! peer identity (plaintext) has the empty principal and namespace, so
//! `principals = ["*"]` requires mutual TLS and `not_principals = ["*"]`
//! selects plaintext requests.
//!
//! The principal is the peer certificate's SPIFFE ID
//! (`spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT`); Istio also accepts
//! `TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT` without the scheme, and so does
//! this module.

/// What a policy does when it matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Allow matching requests (and, once any allow policy exists, only those).
    #[default]
    Allow,
    /// Deny matching requests, whatever allow policies say.
    Deny,
}

/// Who sent the request (Istio's `Source`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Source {
    /// Peer identities (SPIFFE IDs), one of which must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Peer identities none of which may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// Peer namespaces (from the SPIFFE ID), one of which must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Peer namespaces none of which may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
}

/// What the request does (Istio's `Operation`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Operation {
    /// HTTP methods, one of which must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// HTTP methods none of which may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// Paths (without the query), one of which must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Paths none of which may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// One rule: sources and operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Sources, one of which must match (none: any source).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Source>,
    /// Operations, one of which must match (none: any operation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Operation>,
}

/// One authorization policy on a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// A name for counters and error messages (optional).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Allow or deny (default allow).
    #[serde(default)]
    pub action: Action,
    /// The rules; absent matches nothing, `[{}]` matches everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

/// The attributes of a request that policies look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// The peer's SPIFFE ID; `None` for plaintext.
    pub principal: Option<&'a str>,
    /// The HTTP method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
}

/// The outcome of evaluating a workload's policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Denied by the deny policy at this index.
    DeniedBy(usize),
    /// Allow policies exist and none matched.
    NotAllowed,
}

impl Verdict {
    /// Whether the request may go on.
    pub fn allowed(self) -> bool {
        self == Verdict::Allow
    }
}

/// Checks every value of every policy (empty strings and misplaced `*`
/// are refused, as Istio's validation does); the error names the field
/// (`authz[0].rules[1].to[0].paths`) and what is expected.
pub fn validate(policies: &[Policy]) -> Result<(), String> {
    for (i, p) in policies.iter().enumerate() {
        for (j, r) in p.rules.iter().flatten().enumerate() {
            let at = |f: &str| format!("authz[{i}].rules[{j}].{f}");
            let lists = r
                .from
                .iter()
                .enumerate()
                .flat_map(|(k, s)| {
                    [
                        (format!("from[{k}].principals"), &s.principals),
                        (format!("from[{k}].not_principals"), &s.not_principals),
                        (format!("from[{k}].namespaces"), &s.namespaces),
                        (format!("from[{k}].not_namespaces"), &s.not_namespaces),
                    ]
                })
                .chain(r.to.iter().enumerate().flat_map(|(k, o)| {
                    [
                        (format!("to[{k}].methods"), &o.methods),
                        (format!("to[{k}].not_methods"), &o.not_methods),
                        (format!("to[{k}].paths"), &o.paths),
                        (format!("to[{k}].not_paths"), &o.not_paths),
                    ]
                }));
            for (field, values) in lists {
                for v in values {
                    let stars = v.matches('*').count();
                    let ok = !v.is_empty()
                        && (stars == 0 || (stars == 1 && (v.starts_with('*') || v.ends_with('*'))));
                    if !ok {
                        return Err(format!(
                            "{}: {v:?}: expected an exact value, a prefix such as \"/api/*\", a suffix such as \"*.png\", or \"*\"",
                            at(&field)
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (non-empty).
fn matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return !value.is_empty();
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return value.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return value.ends_with(suffix);
    }
    pattern == value
}

/// Whether `value` satisfies a positive and a negative list.
fn field(yes: &[String], no: &[String], value: &str) -> bool {
    (yes.is_empty() || yes.iter().any(|p| matches(p, value)))
        && !no.iter().any(|p| matches(p, value))
}

/// A principal as Istio compares it: without the `spiffe://` scheme.
fn bare(principal: &str) -> &str {
    principal.strip_prefix("spiffe://").unwrap_or(principal)
}

/// The namespace of a SPIFFE ID (`.../ns/NAMESPACE/...`), or "".
pub fn namespace_of(principal: &str) -> &str {
    let mut parts = bare(principal).split('/');
    while let Some(p) = parts.next() {
        if p == "ns" {
            return parts.next().unwrap_or("");
        }
    }
    ""
}

fn source_matches(s: &Source, principal: &str) -> bool {
    let strip = |v: &[String]| v.iter().map(|p| bare(p).to_owned()).collect::<Vec<_>>();
    let bare_principal = bare(principal);
    field(
        &strip(&s.principals),
        &strip(&s.not_principals),
        bare_principal,
    ) && field(&s.namespaces, &s.not_namespaces, namespace_of(principal))
}

fn operation_matches(o: &Operation, method: &str, path: &str) -> bool {
    field(&o.methods, &o.not_methods, method) && field(&o.paths, &o.not_paths, path)
}

fn rule_matches(r: &Rule, req: &Request<'_>) -> bool {
    let principal = req.principal.unwrap_or("");
    let path = req.path.split('?').next().unwrap_or("");
    (r.from.is_empty() || r.from.iter().any(|s| source_matches(s, principal)))
        && (r.to.is_empty() || r.to.iter().any(|o| operation_matches(o, req.method, path)))
}

fn policy_matches(p: &Policy, req: &Request<'_>) -> bool {
    p.rules
        .as_ref()
        .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, req)))
}

/// Evaluates a workload's policies on one request.
pub fn evaluate(policies: &[Policy], req: &Request<'_>) -> Verdict {
    if let Some(i) = policies
        .iter()
        .position(|p| p.action == Action::Deny && policy_matches(p, req))
    {
        return Verdict::DeniedBy(i);
    }
    let mut allows = policies.iter().filter(|p| p.action == Action::Allow);
    let mut any = false;
    for p in allows.by_ref() {
        any = true;
        if policy_matches(p, req) {
            return Verdict::Allow;
        }
    }
    if any {
        Verdict::NotAllowed
    } else {
        Verdict::Allow
    }
}

/// The SPIFFE ID meshsim gives a service's workloads:
/// `spiffe://meshsim.local/ns/default/sa/SERVICE`.
pub fn spiffe_id(service: &str) -> String {
    format!("spiffe://meshsim.local/ns/default/sa/{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(principal: Option<&'a str>, method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            principal,
            method,
            path,
        }
    }

    fn from_principals(action: Action, p: &[&str]) -> Policy {
        Policy {
            name: String::new(),
            action,
            rules: Some(vec![Rule {
                from: vec![Source {
                    principals: p.iter().map(|s| s.to_string()).collect(),
                    ..Source::default()
                }],
                to: vec![],
            }]),
        }
    }

    const A: &str = "spiffe://meshsim.local/ns/default/sa/a";
    const B: &str = "spiffe://meshsim.local/ns/default/sa/b";

    #[test]
    fn no_policies_allow_everything() {
        assert_eq!(evaluate(&[], &req(None, "GET", "/")), Verdict::Allow);
    }

    #[test]
    fn allow_without_rules_denies_all_and_empty_rule_allows_all() {
        let deny_all = Policy::default();
        assert_eq!(
            evaluate(&[deny_all], &req(Some(A), "GET", "/")),
            Verdict::NotAllowed
        );
        let allow_all = Policy {
            rules: Some(vec![Rule::default()]),
            ..Policy::default()
        };
        assert_eq!(
            evaluate(&[allow_all], &req(None, "GET", "/")),
            Verdict::Allow
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let allow = from_principals(Action::Allow, &[A, B]);
        let deny = from_principals(Action::Deny, &[B]);
        let ps = [allow, deny];
        assert_eq!(evaluate(&ps, &req(Some(A), "GET", "/")), Verdict::Allow);
        assert_eq!(
            evaluate(&ps, &req(Some(B), "GET", "/")),
            Verdict::DeniedBy(1)
        );
        assert_eq!(
            evaluate(&ps, &req(None, "GET", "/")),
            Verdict::NotAllowed,
            "an allow policy exists and plaintext matches none"
        );
    }

    #[test]
    fn only_deny_policies_default_allow() {
        let ps = [from_principals(Action::Deny, &[B])];
        assert!(evaluate(&ps, &req(Some(A), "GET", "/")).allowed());
        assert!(!evaluate(&ps, &req(Some(B), "GET", "/")).allowed());
    }

    #[test]
    fn wildcards_and_scheme_less_principals() {
        assert!(matches("/api/*", "/api/v1"));
        assert!(!matches("/api/*", "/apx"));
        assert!(matches("*.png", "/a/b.png"));
        assert!(matches("*", "x"));
        assert!(!matches("*", ""));
        let ps = [from_principals(
            Action::Allow,
            &["meshsim.local/ns/default/sa/a"],
        )];
        assert!(evaluate(&ps, &req(Some(A), "GET", "/")).allowed());
        assert!(!evaluate(&ps, &req(Some(B), "GET", "/")).allowed());
    }

    #[test]
    fn require_mtls_with_not_principals_star() {
        let deny_plain = Policy {
            name: "plaintext".into(),
            action: Action::Deny,
            rules: Some(vec![Rule {
                from: vec![Source {
                    not_principals: vec!["*".into()],
                    ..Source::default()
                }],
                to: vec![],
            }]),
        };
        let ps = [deny_plain];
        assert!(!evaluate(&ps, &req(None, "GET", "/")).allowed());
        assert!(evaluate(&ps, &req(Some(A), "GET", "/")).allowed());
    }

    #[test]
    fn operations_need_every_given_field() {
        let p = Policy {
            name: String::new(),
            action: Action::Allow,
            rules: Some(vec![Rule {
                from: vec![],
                to: vec![Operation {
                    methods: vec!["GET".into()],
                    not_paths: vec!["/admin/*".into()],
                    ..Operation::default()
                }],
            }]),
        };
        let ps = [p];
        assert!(evaluate(&ps, &req(None, "GET", "/x?y=1")).allowed());
        assert!(!evaluate(&ps, &req(None, "POST", "/x")).allowed());
        assert!(!evaluate(&ps, &req(None, "GET", "/admin/users")).allowed());
    }

    #[test]
    fn namespaces_come_from_the_spiffe_id() {
        assert_eq!(namespace_of(A), "default");
        assert_eq!(namespace_of("spiffe://td/ns/prod/sa/x"), "prod");
        assert_eq!(namespace_of(""), "");
        let p = Policy {
            name: String::new(),
            action: Action::Deny,
            rules: Some(vec![Rule {
                from: vec![Source {
                    namespaces: vec!["prod".into()],
                    ..Source::default()
                }],
                to: vec![],
            }]),
        };
        let ps = [p];
        assert!(!evaluate(&ps, &req(Some("spiffe://td/ns/prod/sa/x"), "GET", "/")).allowed());
        assert!(evaluate(&ps, &req(Some(A), "GET", "/")).allowed());
    }

    #[test]
    fn validation_names_the_bad_value() {
        let mut p = from_principals(Action::Allow, &["a*b"]);
        let e = validate(std::slice::from_ref(&p)).unwrap_err();
        assert!(e.contains("authz[0].rules[0].from[0].principals"), "{e}");
        p.rules = Some(vec![Rule {
            from: vec![],
            to: vec![Operation {
                paths: vec![String::new()],
                ..Operation::default()
            }],
        }]);
        assert!(validate(&[p]).is_err());
    }
}
