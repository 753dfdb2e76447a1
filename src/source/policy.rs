//! Which addresses a URL source may reach. URL sources are tenant-controlled requests from a
//! privileged process, so by default loopback, link-local (cloud metadata), unspecified and
//! multicast addresses are refused; operators add the cluster's service and pod ranges with
//! `--deny-url-cidrs` and can open specific ranges with `--allow-url-cidrs`.

use std::net::IpAddr;

use ipnet::IpNet;

/// Refused unless an allow range covers them.
pub const DEFAULT_DENY: [&str; 8] = [
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/8",
    "::/128",
    "224.0.0.0/4",
    "ff00::/8",
];

#[derive(Clone, Debug)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl AddressPolicy {
    /// The default denials plus `extra_deny`; `allow` wins over both.
    pub fn new(allow: Vec<IpNet>, extra_deny: Vec<IpNet>) -> Self {
        let mut deny: Vec<IpNet> = DEFAULT_DENY
            .iter()
            .filter_map(|cidr| cidr.parse().ok())
            .collect();
        deny.extend(extra_deny);
        Self { allow, deny }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is judged as the IPv4 address it is.
        let ip = ip.to_canonical();
        self.allow.iter().any(|net| net.contains(&ip))
            || !self.deny.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_loopback_link_local_and_mapped_forms_by_default() {
        let policy = AddressPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!policy.permits(ip(denied)), "{denied}");
        }
        for allowed in ["93.184.216.34", "10.1.2.3", "2606:4700::1111"] {
            assert!(policy.permits(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn operators_deny_cluster_ranges_and_allow_specific_ones() {
        let policy = AddressPolicy::new(
            vec!["127.0.0.1/32".parse().unwrap()],
            vec!["10.96.0.0/12".parse().unwrap()],
        );
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("10.96.0.1")));
        assert!(policy.permits(ip("10.0.0.1")));
    }
}
