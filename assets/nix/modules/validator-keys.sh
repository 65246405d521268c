# Imports the validator's keys into its client's state, as the client's own
# user, before the validator client starts (validator-keys.nix). Run by
# systemd with the keys as credentials in $CREDENTIALS_DIRECTORY:
#   keystore-0x<pubkey>   an EIP-2335 keystore
#   password              the keystores' password
#   slashing-protection   an EIP-3076 history (optional)
#   wallet-password       Prysm's wallet password (prysm only)
# Arguments: client, the client's package, network, the client's data folder.
# Each key is imported once (a marker under .homestaker/ records it), and the
# slashing history once, before the first key signs: rebooting imports
# nothing twice, and a key added later is imported on the next start.
set -euo pipefail

client=$1 package=$2 network=$3 data=$4
creds=${CREDENTIALS_DIRECTORY:?run by systemd with LoadCredential}
markers=$data/.homestaker
mkdir -p -m 0700 "$data" "$markers"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

slashing() {
  [ -f "$creds/slashing-protection" ] || return 0
  sum=$(sha256sum "$creds/slashing-protection" | cut -d' ' -f1)
  [ -e "$markers/slashing-$sum" ] && return 0
  echo "importing the slashing-protection history"
  case $client in
    lighthouse)
      "$package/bin/lighthouse" --network "$network" account validator slashing-protection import \
        --datadir "$data" "$creds/slashing-protection" ;;
    nimbus)
      "$package/bin/nimbus_beacon_node" slashingdb import "$creds/slashing-protection" --data-dir="$data" ;;
    *)
      echo "no slashing-protection import for $client" >&2; exit 1 ;;
  esac
  touch "$markers/slashing-$sum"
}

imported=0
for keystore in "$creds"/keystore-0x*; do
  [ -e "$keystore" ] || continue
  pubkey=${keystore##*/keystore-}
  [ -e "$markers/key-$pubkey" ] && continue
  # The importers look for the deposit tools' file names.
  file=$work/keystore-m_12381_3600_0_0_0-$pubkey.json
  cp "$keystore" "$file"
  echo "importing validator $pubkey"
  case $client in
    lighthouse)
      # Lighthouse records the key in its slashing database on import.
      "$package/bin/lighthouse" --network "$network" account validator import \
        --datadir "$data" --keystore "$file" --reuse-password --password-file "$creds/password" ;;
    prysm)
      "$package/bin/validator" accounts import --accept-terms-of-use "--$network" \
        --wallet-dir="$data/wallet" --wallet-password-file="$creds/wallet-password" \
        --keys-dir="$file" --account-password-file="$creds/password"
      # Prysm exits 0 even when it imported nothing: check that it has the key.
      "$package/bin/validator" accounts list --accept-terms-of-use "--$network" \
        --wallet-dir="$data/wallet" --wallet-password-file="$creds/wallet-password" \
        | grep -qi "${pubkey#0x}" || { echo "prysm did not import $pubkey" >&2; exit 1; } ;;
    nimbus)
      # The layout nimbus_validator_client loads: the keystore as it is and
      # its password, 0700 folders and 0600 files.
      install -d -m 0700 "$data/validators" "$data/secrets" "$data/validators/$pubkey"
      install -m 0600 "$file" "$data/validators/$pubkey/keystore.json"
      install -m 0600 "$creds/password" "$data/secrets/$pubkey" ;;
    *)
      echo "unknown client $client" >&2; exit 1 ;;
  esac
  touch "$markers/key-$pubkey"
  imported=$((imported + 1))
  # The history goes in before the first key of this machine can sign.
  slashing
done
slashing
echo "$imported validator key(s) imported into $client ($network)"
