# One systemd-networkd .network file from the network carry-over file that
# `homestaker kexec` puts into the node's initrd (the format is written by
# netstate.State.CarryJSON in homestaker's source). Usage:
#
#   jq -r --argjson i N -f network-carry.jq network.json
#
# prints the file for the carried interface number N (0, 1, …). Every value
# is checked before it becomes a setting: a damaged file stops here, and the
# node falls back to DHCP on every ethernet interface.

def fail(what): error("network carry file: \(what)");
def must(re; what):
  if type == "string" and test(re) then . else fail("\(what): \(tojson) is not valid") end;
def mac(what): must("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"; what);
def ip(what): must("^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-f]*:[0-9a-f:.]*)$"; what);
def prefix(what): must("^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-f]*:[0-9a-f:.]*)/[0-9]{1,3}$"; what);
def metric(what):
  if type == "number" and . >= 0 and . == floor then . else fail("\(what): \(tojson) is not a metric") end;

if .version != 1 then fail("version \(.version | tojson), this node reads version 1") else . end
| if (.interfaces | type) != "array" then fail("interfaces is not a list") else . end
| if ($i | type) != "number" or $i < 0 or $i >= (.interfaces | length) then fail("there is no interface \($i)") else . end
| .interfaces[$i] as $iface
| "interfaces[\($i)]" as $at
# Kernel interface names: 1-15 printable characters, no "/" or ":".
| ($iface.name | must("^[!-.0-9;-~]{1,15}$"; "\($at).name")) as $name
| [
    "# Written at boot by homestaker-network-carry.service from",
    "# /run/homestaker/carry/network.json: the network of \($name) before",
    "# homestaker's kexec. DHCP stays on, so a leased address comes back too.",
    "[Match]",
    "MACAddress=\($iface.mac | mac("\($at).mac"))",
    # Only the device itself, never a bridge or VLAN that shares its MAC.
    "Kind=!*",
    "",
    "[Network]",
    "DHCP=yes",
    ( ($iface.addresses // [])[] | select(.dynamic != true)
      | "Address=\(.address | prefix("\($at).addresses"))" ),
    ( if ($iface.leasedIPv4 // "") != "" then
        "", "[DHCPv4]", "RequestAddress=\($iface.leasedIPv4 | ip("\($at).leasedIPv4"))"
      else empty end ),
    ( (.routes // [])[] | select(.interface == $name)
      | "",
        "[Route]",
        "Destination=\(
          if .destination == "default" then
            if .family == "inet6" then "::/0"
            elif .family == "inet" then "0.0.0.0/0"
            else fail("route family \(.family | tojson)") end
          else .destination | prefix("route destination") end)",
        ( if (.gateway // "") != "" then "Gateway=\(.gateway | ip("route gateway"))" else empty end ),
        ( if .onLink == true then "GatewayOnLink=yes" else empty end ),
        ( if (.metric // 0) != 0 then "Metric=\(.metric | metric("route metric"))" else empty end ) )
  ]
| join("\n")
