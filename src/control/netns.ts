/**
 * Named network namespaces made from wherever flowd runs: `ip netns add/del` in the mount
 * namespace where the name outlives the caller (see outerMountPid).
 * Called by: control/dhcp-agent.ts (qdhcp- namespaces), lab/node-setup.ts (VM namespaces).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

function ok(cmd: string, ...args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function mountNsOf(pid: string): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return '';
  }
}

function parentOf(pid: string): string {
  try {
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2).split(' ')[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * The nearest ancestor process in another mount namespace than ours, '' when there is none.
 * `ip netns exec NODE ...` (how a namespace stands in for a node VM) runs its command in a
 * private mount namespace whose mounts do not propagate back, so a named namespace made there
 * (a bind mount on /run/netns/NAME) would vanish with it; the process that ran `ip netns exec`
 * is in the mount namespace where names last. (PID 1 would be the obvious choice, but some
 * sandboxes refuse opening its namespaces.) On a VM, under systemd or a shell, there is none.
 */
export function outerMountPid(): string {
  const own = mountNsOf('self');
  if (own === '') return '';
  let pid = parentOf('self');
  for (let hops = 0; hops < 64 && pid !== '' && pid !== '0'; hops++) {
    const ns = mountNsOf(pid);
    if (ns !== '' && ns !== own) return pid;
    pid = parentOf(pid);
  }
  return '';
}

/** `ip netns add/del NAME` in the mount namespace where the name outlives this process. */
export function netnsCmd(op: 'add' | 'del', name: string): boolean {
  const outer = outerMountPid();
  if (outer !== '') return ok('nsenter', '-t', outer, '-m', '--', 'ip', 'netns', op, name);
  return ok('ip', 'netns', op, name);
}
