// `deviceId: "auto"`: a stable device UUID derived from what the machine already has.
//
//   1. the systemd/D-Bus machine id (/etc/machine-id, then /var/lib/dbus/machine-id);
//   2. else the MAC address of the first hardware network interface, by interface name.
//
// The id is a name-based UUID (RFC 4122 version 5) in a fixed cic-runtime namespace, of the
// name "machine-id:<32 hex>" or "mac:<aa:bb:cc:dd:ee:ff>". Hashing keeps the raw machine id
// off the wire (systemd asks applications not to expose it), and being a standard v5 UUID a
// factory can compute the same value offline (README: provisioning).
//
// Hazards:
// - An image that ships a filled-in /etc/machine-id gives every unit the same id: images must
//   ship it empty (systemd fills it on first boot). An empty or "uninitialized" file counts
//   as absent. On a read-only root whose /etc/machine-id stays empty, systemd invents a new
//   id at every boot; such devices need an explicit deviceId.
// - os.networkInterfaces() lists only interfaces that hold an address, so before DHCP (or
//   with Wi-Fi down) the "first" interface changes between boots. The hardware interfaces in
//   sysfs are listed whatever their link state; bridges, veth, tun, docker and the loopback
//   have no `device` link there and are skipped. os.networkInterfaces() is only the fallback
//   when sysfs shows no hardware interface (containers).
// - A removable USB adapter whose name sorts first changes the MAC-derived id: devices with
//   removable network hardware should rely on the machine id or set deviceId explicitly.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces as osNetworkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import { CicError } from '../errors';

/** The value of the deviceId setting that asks for derivation. */
export const AUTO_DEVICE_ID = 'auto';

/** The fixed namespace of derived ids (changing it changes every derived device id). */
export const DEVICE_ID_NAMESPACE = '324ab4d3-9cc3-4507-a978-68539fba50d7';

export interface DeviceIdSources {
  /** Machine-id files, first valid one wins. Default /etc/machine-id, /var/lib/dbus/machine-id. */
  machineIdPaths?: readonly string[];
  /** The sysfs network class directory. Default /sys/class/net. */
  sysClassNet?: string;
  /** Fallback interface list when sysfs shows no hardware interface. Default os.networkInterfaces. */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface DerivedDeviceId {
  id: string;
  source: 'machine-id' | 'mac';
  /** The machine-id file or the interface name (not secret; for logs). */
  from: string;
}

const DEFAULT_MACHINE_ID_PATHS = ['/etc/machine-id', '/var/lib/dbus/machine-id'];
const MACHINE_ID = /^[0-9a-f]{32}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** RFC 4122 §4.3 name-based UUID, version 5 (SHA-1). */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new CicError('ERR_INVALID_ARGUMENT', 'namespace must be a UUID');
  const b = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function readMachineId(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const id = text.trim().toLowerCase();
  return MACHINE_ID.test(id) && !/^0+$/.test(id) ? id : undefined;
}

function usableMac(mac: string | undefined): string | undefined {
  const m = mac?.trim().toLowerCase();
  if (!m || !MAC.test(m) || m === '00:00:00:00:00:00' || m === 'ff:ff:ff:ff:ff:ff') return undefined;
  return m;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Hardware interfaces from sysfs, sorted by name: [name, mac]. */
function sysfsMacs(dir: string): Array<[string, string]> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: Array<[string, string]> = [];
  for (const name of names.sort(byName)) {
    if (!existsSync(join(dir, name, 'device'))) continue;
    let address: string;
    try {
      address = readFileSync(join(dir, name, 'address'), 'utf8');
    } catch {
      continue;
    }
    const mac = usableMac(address);
    if (mac) out.push([name, mac]);
  }
  return out;
}

function osMacs(list: NodeJS.Dict<NetworkInterfaceInfo[]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of Object.keys(list).sort(byName)) {
    const addrs = list[name] ?? [];
    const mac = addrs.filter((a) => !a.internal).map((a) => usableMac(a.mac)).find((m) => m !== undefined);
    if (mac) out.push([name, mac]);
  }
  return out;
}

/** Derives the device id; throws CONFIG_INVALID when the machine offers neither source. */
export function deriveDeviceId(sources: DeviceIdSources = {}): DerivedDeviceId {
  const paths = sources.machineIdPaths ?? DEFAULT_MACHINE_ID_PATHS;
  for (const path of paths) {
    const id = readMachineId(path);
    if (id) return { id: uuidV5(DEVICE_ID_NAMESPACE, `machine-id:${id}`), source: 'machine-id', from: path };
  }
  let macs = sysfsMacs(sources.sysClassNet ?? '/sys/class/net');
  if (macs.length === 0) {
    let list: NodeJS.Dict<NetworkInterfaceInfo[]> = {};
    try {
      list = (sources.networkInterfaces ?? osNetworkInterfaces)();
    } catch {
      // Throws where the system refuses the query (uv_interface_addresses in some sandboxes).
    }
    macs = osMacs(list);
  }
  const first = macs[0];
  if (first) return { id: uuidV5(DEVICE_ID_NAMESPACE, `mac:${first[1]}`), source: 'mac', from: first[0] };
  throw new CicError(
    'CONFIG_INVALID',
    `cannot derive a device id: no machine id (${paths.join(', ')}) and no network interface with a MAC address; set deviceId explicitly`,
  );
}
