// deviceId "auto": a v5 UUID from the machine id, else from the first hardware MAC by
// interface name, else a CONFIG_INVALID error; every source injected (temp files, a fake
// sysfs tree, a fake interface list).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICE_ID_NAMESPACE, deriveDeviceId, uuidV5, type DeviceIdSources } from '../src/util/device-id';
import { loadConfig, validateConfig } from '../src/config';
import { isCicError, type CicError } from '../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'cic-devid-'));
const MID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function text(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** A fake /sys/class/net: name → [mac, hardware?]. */
function sysfs(name: string, ifaces: Record<string, [string, boolean]>): string {
  const root = join(dir, name);
  for (const [iface, [mac, hardware]] of Object.entries(ifaces)) {
    mkdirSync(join(root, iface), { recursive: true });
    writeFileSync(join(root, iface, 'address'), `${mac}\n`);
    if (hardware) mkdirSync(join(root, iface, 'device'));
  }
  mkdirSync(root, { recursive: true });
  return root;
}

function iface(mac: string, internal = false): NetworkInterfaceInfo {
  return { address: internal ? '127.0.0.1' : '192.0.2.9', netmask: '255.255.255.0', family: 'IPv4', mac, internal, cidr: null };
}

const noMachineId = [join(dir, 'absent-1'), join(dir, 'absent-2')];
const emptySysfs = sysfs('sys-empty', {});
const noInterfaces = () => ({});

test('uuidV5 matches RFC 4122 (the well-known DNS-namespace vector)', () => {
  assert.is(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  assert.match(uuidV5(DEVICE_ID_NAMESPACE, 'x'), V5);
});

test('machine id present: a v5 UUID of it in the project namespace, stable, not the raw id', () => {
  const p = text('machine-id', `${MID}\n`);
  const a = deriveDeviceId({ machineIdPaths: [p], sysClassNet: emptySysfs, networkInterfaces: noInterfaces });
  assert.equal(a, { id: uuidV5(DEVICE_ID_NAMESPACE, `machine-id:${MID}`), source: 'machine-id', from: p });
  assert.match(a.id, V5);
  assert.not.ok(a.id.replace(/-/g, '').includes(MID.slice(0, 12)));
  assert.equal(deriveDeviceId({ machineIdPaths: [p] }), a, 'the same id every time, whatever the interfaces');
  // Upper-case digits and surrounding blanks name the same machine.
  assert.is(deriveDeviceId({ machineIdPaths: [text('machine-id-upper', ` ${MID.toUpperCase()} \n`)] }).id, a.id);
});

test('the first valid machine-id file wins; empty, "uninitialized" and junk count as absent', () => {
  const good = text('mid-good', `${MID}\n`);
  const r = deriveDeviceId({ machineIdPaths: [join(dir, 'missing'), text('mid-empty', ''), text('mid-uninit', 'uninitialized\n'), text('mid-zero', '0'.repeat(32)), text('mid-short', 'abc\n'), good] });
  assert.equal([r.source, r.from], ['machine-id', good]);
});

test('no machine id: the first hardware interface by name, skipping virtual ones and all-zero MACs', () => {
  const net = sysfs('sys-a', {
    br0: ['02:42:ac:11:00:01', false], // bridge: no device link
    docker0: ['02:42:ac:11:00:02', false],
    eth0: ['00:00:00:00:00:00', true], // all-zero: skipped
    eth1: ['B8:27:EB:12:34:56', true],
    lo: ['00:00:00:00:00:00', false],
    wlan0: ['b8:27:eb:65:43:21', true],
  });
  const r = deriveDeviceId({ machineIdPaths: noMachineId, sysClassNet: net, networkInterfaces: () => ({ aaa0: [iface('02:00:00:00:00:09')] }) });
  assert.equal(r, { id: uuidV5(DEVICE_ID_NAMESPACE, 'mac:b8:27:eb:12:34:56'), source: 'mac', from: 'eth1' });
});

test('no hardware interface in sysfs: the interface list, sorted by name, non-internal only', () => {
  const list = () => ({
    wlan0: [iface('b8:27:eb:00:00:02')],
    lo: [iface('00:00:00:00:00:00', true)],
    eth0: [iface('00:00:00:00:00:00')],
    enp1s0: [iface('b8:27:eb:00:00:01')],
  });
  const r = deriveDeviceId({ machineIdPaths: noMachineId, sysClassNet: join(dir, 'no-sysfs'), networkInterfaces: list });
  assert.equal([r.source, r.from, r.id], ['mac', 'enp1s0', uuidV5(DEVICE_ID_NAMESPACE, 'mac:b8:27:eb:00:00:01')]);
  // Insertion order does not matter, only names.
  const reversed = () => Object.fromEntries(Object.entries(list()).reverse());
  assert.is(deriveDeviceId({ machineIdPaths: noMachineId, sysClassNet: emptySysfs, networkInterfaces: reversed }).id, r.id);
});

test('neither: CONFIG_INVALID saying so', () => {
  const sources: DeviceIdSources = { machineIdPaths: noMachineId, sysClassNet: sysfs('sys-lo', { lo: ['00:00:00:00:00:00', false] }), networkInterfaces: () => ({ lo: [iface('00:00:00:00:00:00', true)] }) };
  try {
    deriveDeviceId(sources);
    assert.unreachable();
  } catch (e) {
    assert.ok(isCicError(e, 'CONFIG_INVALID'), String(e));
    assert.match((e as Error).message, /no machine id .*absent-1.* and no network interface with a MAC address; set deviceId explicitly/);
  }
  const throwing = () => {
    throw new Error('uv_interface_addresses');
  };
  assert.throws(() => deriveDeviceId({ ...sources, networkInterfaces: throwing }), (e: unknown) => isCicError(e, 'CONFIG_INVALID'));
});

test('configuration: "auto" from the file, the environment or a flag is resolved; explicit ids are kept', () => {
  const sources: DeviceIdSources = { machineIdPaths: [text('mid-cfg', MID)] };
  const want = uuidV5(DEVICE_ID_NAMESPACE, `machine-id:${MID}`);
  const cfg = text('auto.json', JSON.stringify({ deviceId: 'auto' }));
  assert.is(loadConfig({ env: {}, configPath: cfg, deviceIdSources: sources }).deviceId, want);
  assert.is(loadConfig({ env: { CIC_DEVICE_ID: 'auto' }, deviceIdSources: sources }).deviceId, want);
  assert.is(loadConfig({ env: {}, flags: { 'device-id': 'auto' }, deviceIdSources: sources }).deviceId, want);
  assert.is(loadConfig({ env: { CIC_DEVICE_ID: 'device-7f3c' }, deviceIdSources: sources }).deviceId, 'device-7f3c');
  assert.is(loadConfig({ env: {}, configPath: cfg, flags: { 'device-id': 'dev-1' }, deviceIdSources: sources }).deviceId, 'dev-1');
  // Pure validation leaves the word alone.
  assert.is(validateConfig({ env: { CIC_DEVICE_ID: 'auto' } }, { fileProblem: null, deviceIdSources: null }).deviceId, 'auto');
});

test('configuration: "auto" on a machine with neither source names the key and its source', () => {
  let e: CicError | undefined;
  try {
    loadConfig({ env: { CIC_DEVICE_ID: 'auto' }, deviceIdSources: { machineIdPaths: noMachineId, sysClassNet: emptySysfs, networkInterfaces: noInterfaces } });
  } catch (err) {
    e = err as CicError;
  }
  assert.ok(e && isCicError(e, 'CONFIG_INVALID'), String(e));
  assert.ok(e!.message.includes('deviceId (from CIC_DEVICE_ID): cannot derive a device id'), e!.message);
});

test.run();
