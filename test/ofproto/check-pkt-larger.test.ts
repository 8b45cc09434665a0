/**
 * check_pkt_larger(LEN)->DST: parsed and printed as ovs-ofctl does, and translated into the
 * datapath's check_pkt_len(size, gt(...), le(...)) with the rest of the action list taken
 * once per value of DST (OVN's gateway-MTU idiom).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { traceFields } from '../../src/ofproto/trace';
import { parseFlow } from '../../src/ofproto/flow-syntax';
import { formatActions } from '../../src/ofproto/action-syntax';
import { FlowSyntaxError } from '../../src/errors';

test('check_pkt_larger parses and prints as ovs-ofctl (parse-flow) prints it', () => {
  const f = parseFlow('ip,actions=check_pkt_larger(1464)->NXM_NX_REG0[0],resubmit(,5)', { command: 'add' });
  assert.equal(formatActions(f.actions), 'check_pkt_larger(1464)->NXM_NX_REG0[0],resubmit(,5)');
  assert.throws(() => parseFlow('ip,actions=check_pkt_larger(1464)->NXM_NX_REG0[0..1]', { command: 'add' }),
    (e: unknown) => e instanceof FlowSyntaxError && /single bit/.test(e.message));
  assert.throws(() => parseFlow('ip,actions=check_pkt_larger(1464)', { command: 'add' }),
    (e: unknown) => e instanceof FlowSyntaxError && /check_pkt_larger\(LENGTH\)->DST/.test(e.message));
});

test('xlate forks the rest of the actions into check_pkt_len gt/le branches', () => {
  const o = new Ofproto();
  const b = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 3; p++) b.addPort({ name: `p${p}`, ofport: p, kind: 'dummy' });
  b.addFlows([
    'table=0,priority=5,in_port=1,ip actions=check_pkt_larger(1464)->NXM_NX_REG0[0],resubmit(,70)',
    'table=70,priority=1,reg0=0x1/0x1,ip actions=output:3',
    'table=70,priority=0 actions=mod_dl_dst:00:00:00:00:00:02,output:2',
  ].join('\n'), 0);
  o.addBridge(new BridgeView(b));
  const t = traceFields(o, 'br0', 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:09,ip,nw_src=1.1.1.1,nw_dst=2.2.2.2', 0);
  const m = /^Datapath actions: (.*)$/m.exec(t.text);
  assert.ok(m !== null, t.text);
  const dp = (name: string): number => o.dpPorts().find((x) => x.port.name === name)!.dpPort;
  assert.equal(m[1], `check_pkt_len(size=1464,gt(${dp('p3')}),le(set(eth(dst=00:00:00:00:00:02)),${dp('p2')}))`);
});
