// Readers for /proc/<pid>: memory split (anonymous vs file-backed, PSS) and activity counters
// summed over every thread (V8's platform workers and libuv's pool are threads of the process,
// and a wakeup on any of them is a wakeup of the process).
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcMemory {
  /** Bytes. */
  rss: number;
  rssAnon: number;
  rssFile: number;
  rssShmem: number;
  /** Peak RSS (VmHWM). */
  hwm: number;
  pss: number;
  pssAnon: number;
  pssFile: number;
  threads: number;
}

export interface ProcActivity {
  /** Voluntary + involuntary context switches, all threads. */
  ctxSwitches: number;
  voluntary: number;
  involuntary: number;
  /** Times any thread was scheduled onto a CPU (/proc/<pid>/task/<tid>/schedstat, 3rd field). */
  runs: number;
  /** CPU time of all threads, ns (schedstat, 1st field: precise, unlike utime/stime ticks). */
  cpuNs: number;
  threads: number;
}

function kbField(text: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : NaN;
}

function numField(text: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

export function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/status', 'utf8');
    return true;
  } catch {
    return false;
  }
}

export function readProcMemory(pid: number | 'self'): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  let rollup = '';
  try {
    rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    // kernels before 4.14 have no smaps_rollup: PSS stays NaN
  }
  return {
    rss: kbField(status, 'VmRSS'),
    rssAnon: kbField(status, 'RssAnon'),
    rssFile: kbField(status, 'RssFile'),
    rssShmem: kbField(status, 'RssShmem'),
    hwm: kbField(status, 'VmHWM'),
    pss: kbField(rollup, 'Pss'),
    pssAnon: kbField(rollup, 'Pss_Anon'),
    pssFile: kbField(rollup, 'Pss_File'),
    threads: numField(status, 'Threads'),
  };
}

export function readProcActivity(pid: number | 'self'): ProcActivity {
  const out: ProcActivity = { ctxSwitches: 0, voluntary: 0, involuntary: 0, runs: 0, cpuNs: 0, threads: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let status: string;
    let sched: string;
    try {
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch {
      continue; // the thread ended between readdir and read
    }
    const vol = numField(status, 'voluntary_ctxt_switches');
    const invol = numField(status, 'nonvoluntary_ctxt_switches');
    const [cpuNs, , runs] = sched.trim().split(/\s+/).map(Number);
    out.voluntary += vol;
    out.involuntary += invol;
    out.ctxSwitches += vol + invol;
    out.cpuNs += cpuNs ?? 0;
    out.runs += runs ?? 0;
    out.threads++;
  }
  return out;
}

export function activityDelta(a: ProcActivity, b: ProcActivity): ProcActivity {
  return {
    ctxSwitches: b.ctxSwitches - a.ctxSwitches,
    voluntary: b.voluntary - a.voluntary,
    involuntary: b.involuntary - a.involuntary,
    runs: b.runs - a.runs,
    cpuNs: b.cpuNs - a.cpuNs,
    threads: b.threads,
  };
}
