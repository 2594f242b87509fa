"""
Formatting of socket addresses for log lines.
"""

from ipaddress import IPv6Address as IPv6Host
from ipaddress import ip_address

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress


def formatHost(host: str) -> str:
    """
    Normalize an IP address string for display.

    An IPv4-mapped IPv6 address (C{::ffff:192.0.2.1}), which a dual-stack
    socket reports for IPv4 clients, becomes the plain IPv4 address.

    @param host: An IPv4 or IPv6 address, or any other host string.
    @return: The normalized address, or C{host} unchanged when it is not an
        IP address.
    """
    try:
        parsed = ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(parsed, IPv6Host) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return host


def formatAddress(address: IAddress) -> str:
    """
    Format a transport address as C{host:port}, with IPv6 hosts in brackets.

    @param address: The address from C{getPeer()} or C{getHost()}.
    @return: C{192.0.2.1:5000}, C{[2001:db8::1]:5000}, C{unix:/path} or the
        C{repr} of an address of any other type.
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        host = formatHost(address.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{address.port}"
    if isinstance(address, UNIXAddress):
        name = (
            address.name.decode() if isinstance(address.name, bytes) else address.name
        )
        return f"unix:{name or '(unnamed)'}"
    return repr(address)


def forwardedClient(header: str | None, trustedProxies: int) -> str | None:
    """
    Take the client address from an C{X-Forwarded-For} header.

    Each trusted proxy appends the address it received the request from, so
    with C{trustedProxies} proxies in front of the server the client is that
    many entries from the right. Entries further left were written by the
    client itself and prove nothing.

    @param header: The header's value, entries separated by commas.
    @param trustedProxies: The number of trusted proxies, 1 or more.
    @return: The normalized address, or L{None} when the header is missing,
        has too few entries, or the entry is not an IP address.
    """
    if not header:
        return None
    entries = [entry.strip() for entry in header.split(",")]
    if len(entries) < trustedProxies:
        return None
    entry = stripPort(entries[-trustedProxies])
    try:
        ip_address(entry)
    except ValueError:
        return None
    return formatHost(entry)


def stripPort(entry: str) -> str:
    """
    Drop a port that some proxies append to an address: C{192.0.2.1:5000}
    and C{[2001:db8::1]:5000} become the address alone.
    """
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry
