//! What the machine says about an interface before capturing on it: whether it exists now, and
//! the link type libpcap will report for it (so a filter can be compiled as the capture will).

use crate::LinkType;

/// libpcap's pseudo-interface that captures on every interface (cooked headers).
pub const ANY: &str = "any";

/// Whether `name` is a capture device on this machine now (libpcap's device list, which also
/// holds interfaces that are down). `None` when the list cannot be read.
pub fn interface_exists(name: &str) -> Option<bool> {
    if name == ANY {
        return Some(true);
    }
    let devices = pcap::Device::list().ok()?;
    Some(devices.iter().any(|d| d.name == name))
}

/// The link type a libpcap capture on `name` would have, from the kernel's ARPHRD type
/// (`/sys/class/net/NAME/type`); Ethernet when unknown (an interface that is not there yet).
pub fn interface_link_type(name: &str) -> LinkType {
    if name == ANY {
        return LinkType::LINUX_SLL;
    }
    let arphrd = std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    match arphrd {
        // Ethernet and loopback (libpcap gives loopback Ethernet headers on Linux).
        None | Some(1) | Some(772) => LinkType::ETHERNET,
        // No link header: tun, sit, IP-in-IP, WireGuard.
        Some(65534) | Some(776) | Some(768) | Some(769) => LinkType::RAW,
        // Anything else is read with cooked headers.
        Some(_) => LinkType::LINUX_SLL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_there_and_ethernet_framed() {
        if std::path::Path::new("/sys/class/net/lo").exists() {
            assert_eq!(interface_link_type("lo"), LinkType::ETHERNET);
            assert_ne!(interface_exists("lo"), Some(false));
        }
        assert_eq!(interface_exists("any"), Some(true));
        assert_ne!(interface_exists("bwnosuchif0"), Some(true));
        assert_eq!(interface_link_type("bwnosuchif0"), LinkType::ETHERNET);
    }
}
