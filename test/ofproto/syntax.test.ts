/**
 * ovs-ofctl flow syntax: parse -> print equals what Open vSwitch 3.1 prints for the same text.
 * The expected strings were produced by `ovs-ofctl parse-flow` (the part after "ADD ") and are
 * hard-coded; when /usr/bin/ovs-ofctl exists the same inputs are also checked live against it.
 * Errors: every error path names the 1-based column and what was expected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { parseFlow, parseFlowsFile } from '../../src/ofproto/flow-syntax';
import { formatMatch, parseIpv6, formatIpv6 } from '../../src/ofproto/match-syntax';
import { formatActions } from '../../src/ofproto/action-syntax';
import { FlowSyntaxError } from '../../src/errors';
import { fieldByName, fieldByNxm, readField, writeField, readSubfield, writeSubfield } from '../../src/ofproto/fields';
import { KEY_WORDS, W_DL_SRC_HI, W_DL_SRC_LO, W_REG0, W_VLAN_DLTYPE } from '../../src/packet/flowkey-layout';

/** [input, what ovs-ofctl parse-flow printed after "ADD "] */
const VERIFIED: [string, string][] = [
  ["in_port=1,actions=output:2", "in_port=1 actions=output:2"],
  ["priority=0,actions=NORMAL", "priority=0 actions=NORMAL"],
  ["priority=1,in_port=1,dl_vlan=5,dl_vlan_pcp=3,actions=strip_vlan,output:3", "priority=1,in_port=1,dl_vlan=5,dl_vlan_pcp=3 actions=strip_vlan,output:3"],
  ["dl_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop", "dl_src=00:11:22:00:00:00/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop"],
  ["tun_id=0x5/0xff,tun_src=1.1.1.1,tun_dst=2.2.2.0/24,metadata=0x5,reg0=5,reg3=0x5/0xff,actions=drop", "reg0=0x5,reg3=0x5/0xff,tun_id=0x5/0xff,tun_src=1.1.1.1,tun_dst=2.2.2.0/24,metadata=0x5 actions=drop"],
  ["ipv6,ipv6_src=2001:db8::/32,actions=drop", "ipv6,ipv6_src=2001:db8::/32 actions=drop"],
  ["tcp6,tcp_flags=0x2/0x7,ipv6_dst=::1,actions=drop", "tcp6,ipv6_dst=::1,tcp_flags=-fin+syn-rst actions=drop"],
  ["vlan_tci=0x1005/0x1fff,arp,arp_op=1,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:01,arp_tpa=10.0.0.1,arp_spa=10.0.0.0/24,actions=drop", "arp,dl_vlan=5,arp_spa=10.0.0.0/24,arp_tpa=10.0.0.1,arp_op=1,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:01 actions=drop"],
  ["arp,nw_src=1.2.3.4,nw_dst=2.0.0.0/8,actions=drop", "arp,arp_spa=1.2.3.4,arp_tpa=2.0.0.0/8 actions=drop"],
  ["nw_src=1.2.3.4,actions=drop", "actions=drop"],
  ["tcp,tp_src=80,nw_proto=6,actions=drop", "tcp,tp_src=80 actions=drop"],
  ["tp_src=80,actions=drop", "actions=drop"],
  ["ct_state=+trk+new-est,ct_zone=5,ct_mark=0x3/0xf,actions=drop", "ct_state=+new-est+trk,ct_zone=5,ct_mark=0x3/0xf actions=drop"],
  ["tcp,tcp_flags=syn|ack,actions=drop", "tcp,tcp_flags=syn|ack actions=drop"],
  ["tcp,tcp_flags=0,actions=drop", "tcp,tcp_flags=0 actions=drop"],
  ["tcp,tcp_flags=+syn+ack,actions=drop", "tcp,tcp_flags=+syn+ack actions=drop"],
  ["ct_state=0,actions=drop", "ct_state=0 actions=drop"],
  ["ct_state=trk|est,actions=drop", "ct_state=est|trk actions=drop"],
  ["ct_state=0x21/0x21,actions=drop", "ct_state=+new+trk actions=drop"],
  ["reg0=0,metadata=0,tun_id=0,actions=drop", "reg0=0,tun_id=0,metadata=0 actions=drop"],
  ["dl_vlan=0xffff,actions=drop", "vlan_tci=0x0000 actions=drop"],
  ["dl_vlan=0,actions=drop", "dl_vlan=0 actions=drop"],
  ["vlan_tci=0,actions=drop", "vlan_tci=0x0000 actions=drop"],
  ["vlan_tci=0/0x1000,actions=drop", "vlan_tci=0x0000/0x1000 actions=drop"],
  ["vlan_tci=0x1000/0x1000,actions=drop", "vlan_tci=0x1000/0x1000 actions=drop"],
  ["dl_vlan_pcp=3,actions=drop", "dl_vlan_pcp=3 actions=drop"],
  ["vlan_tci=0x5/0xfff,actions=drop", "vlan_tci=0x0005/0x0fff actions=drop"],
  ["ip,nw_src=10.0.0.0/255.0.255.0,nw_dst=10.1.0.0/16,actions=drop", "ip,nw_src=10.0.0.0/255.0.255.0,nw_dst=10.1.0.0/16 actions=drop"],
  ["ip,nw_tos=5,actions=drop", "ip,nw_tos=4 actions=drop"],
  ["ip,nw_ecn=3,nw_tos=8,actions=drop", "ip,nw_tos=8,nw_ecn=3 actions=drop"],
  ["icmp,icmp_type=8,icmp_code=0,actions=drop", "icmp,icmp_type=8,icmp_code=0 actions=drop"],
  ["icmp6,icmp_type=135,actions=drop", "icmp6,icmp_type=135 actions=drop"],
  ["udp6,tp_src=1,actions=drop", "udp6,tp_src=1 actions=drop"],
  ["sctp,tp_dst=5,actions=drop", "sctp,tp_dst=5 actions=drop"],
  ["ip,nw_proto=17,actions=drop", "udp actions=drop"],
  ["ip,nw_proto=99,actions=drop", "ip,nw_proto=99 actions=drop"],
  ["dl_type=0x1234,actions=drop", "dl_type=0x1234 actions=drop"],
  ["dl_type=0x0800,actions=drop", "ip actions=drop"],
  ["dl_type=0x8035,actions=drop", "rarp actions=drop"],
  ["ipv6,ipv6_src=2001:db8::1/ffff:0:ffff::,actions=drop", "ipv6,ipv6_src=2001::/ffff:0:ffff:: actions=drop"],
  ["ip,nw_frag=yes,actions=drop", "ip,nw_frag=yes actions=drop"],
  ["ip,nw_frag=first,actions=drop", "ip,nw_frag=first actions=drop"],
  ["ip,nw_frag=not_later,actions=drop", "ip,nw_frag=not_later actions=drop"],
  ["ip,nw_frag=no,actions=drop", "ip,nw_frag=no actions=drop"],
  ["in_port=LOCAL,actions=drop", "in_port=LOCAL actions=drop"],
  ["priority=32768,actions=drop", "actions=drop"],
  ["ct_mark=0,actions=drop", "ct_mark=0 actions=drop"],
  ["metadata=0x5/0xf,actions=drop", "metadata=0x5/0xf actions=drop"],
  ["arp,arp_op=2,arp_sha=00:11:22:33:44:55/ff:ff:ff:ff:ff:00,actions=drop", "arp,arp_op=2,arp_sha=00:11:22:33:44:00/ff:ff:ff:ff:ff:00 actions=drop"],
  ["dl_dst=ff:ff:ff:ff:ff:ff,actions=drop", "dl_dst=ff:ff:ff:ff:ff:ff actions=drop"],
  ["icmp,tp_src=3,actions=drop", "icmp,icmp_type=3 actions=drop"],
  ["tcp,icmp_type=3,actions=drop", "tcp,tp_src=3 actions=drop"],
  ["ip,tp_src=3,actions=drop", "ip actions=drop"],
  ["tcp,tcp_src=80,udp_dst=5,actions=drop", "tcp,tp_src=80,tp_dst=5 actions=drop"],
  ["udp,udp_dst=5,actions=drop", "udp,tp_dst=5 actions=drop"],
  ["ip,ip_src=1.2.3.4,eth_src=00:00:00:00:00:01,vlan_vid=5,actions=drop", "ip,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,nw_src=1.2.3.4 actions=drop"],
  ["vlan_vid=0x1005,actions=drop", "dl_vlan=5 actions=drop"],
  ["vlan_vid=0x1000/0x1000,actions=drop", "vlan_tci=0x1000/0x1000 actions=drop"],
  ["vlan_pcp=3,actions=drop", "dl_vlan_pcp=3 actions=drop"],
  ["ip,ip_dscp=3,actions=drop", "ip,nw_tos=12 actions=drop"],
  ["tp_dst=80,tcp,actions=drop", "tcp,tp_dst=80 actions=drop"],
  ["reg15=0xffffffff,reg2=5/0xff,actions=drop", "reg2=0x5/0xff,reg15=0xffffffff actions=drop"],
  ["priority=65535,dl_vlan=4095,actions=drop", "priority=65535,dl_vlan=4095 actions=drop"],
  ["ipv6,ipv6_dst=fe80::1:2/64,actions=drop", "ipv6,ipv6_dst=fe80::/64 actions=drop"],
  ["ipv6,ipv6_src=::ffff:1.2.3.4,actions=drop", "ipv6,ipv6_src=::ffff:1.2.3.4 actions=drop"],
  ["ipv6,ipv6_src=1:0:0:1:0:0:0:1,actions=drop", "ipv6,ipv6_src=1:0:0:1::1 actions=drop"],
  ["ipv6,ipv6_src=1:0:1:0:1:0:1:0,actions=drop", "ipv6,ipv6_src=1:0:1:0:1:0:1:0 actions=drop"],
  ["arp,arp_op=0x1,actions=drop", "arp,arp_op=1 actions=drop"],
  ["recirc_id=5,actions=drop", "recirc_id=0x5 actions=drop"],
  ["arp,actions=load:0x2->NXM_OF_ARP_OP[],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0xa000001->NXM_OF_ARP_SPA[],load:0x5->NXM_OF_VLAN_TCI[0..11],IN_PORT", "arp actions=load:0x2->NXM_OF_ARP_OP[],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0xa000001->NXM_OF_ARP_SPA[],load:0x5->NXM_OF_VLAN_TCI[0..11],IN_PORT"],
  ["in_port=1,actions=strip_vlan,pop_vlan,mod_vlan_vid:5,mod_vlan_pcp:3,output:2,NORMAL,FLOOD,ALL,LOCAL,CONTROLLER", "in_port=1 actions=strip_vlan,strip_vlan,mod_vlan_vid:5,mod_vlan_pcp:3,output:2,NORMAL,FLOOD,ALL,LOCAL,CONTROLLER:65535"],
  ["ip,actions=mod_nw_src:1.2.3.4,mod_dl_src:00:11:22:33:44:55,mod_tp_src:4,dec_ttl,set_tunnel:5,set_tunnel64:0x100000000,resubmit(,20),resubmit(3,4),resubmit:5,note:01020304", "ip actions=mod_nw_src:1.2.3.4,mod_dl_src:00:11:22:33:44:55,mod_tp_src:4,dec_ttl,set_tunnel:0x5,set_tunnel64:0x100000000,resubmit(,20),resubmit(3,4),resubmit:5,note:01.02.03.04.00.00"],
  ["actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x1234,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1", "actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x1234,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1"],
  ["ip,actions=ct(commit,zone=5,table=3,nat(src=1.2.3.4-1.2.3.5:100-200),exec(load:1->NXM_NX_CT_MARK[])),goto_table:5", "ip actions=ct(commit,table=3,zone=5,nat(src=1.2.3.4-1.2.3.5:100-200),exec(load:0x1->NXM_NX_CT_MARK[])),resubmit(,5)"],
  ["actions=set_field:5->reg0,set_field:00:11:22:33:44:55->eth_src,load:1->NXM_NX_REG1[3..5],set_field:0x5/0xf->reg2,load:0x1234->NXM_NX_TUN_ID[]", "actions=load:0x5->NXM_NX_REG0[],mod_dl_src:00:11:22:33:44:55,load:0x1->NXM_NX_REG1[3..5],load:0x5->NXM_NX_REG2[0..3],load:0x1234->NXM_NX_TUN_ID[]"],
  ["actions=CONTROLLER", "actions=CONTROLLER:65535"],
  ["actions=controller:100", "actions=CONTROLLER:100"],
  ["actions=in_port", "actions=IN_PORT"],
  ["actions=output:IN_PORT", "actions=IN_PORT"],
  ["actions=output:in_port", "actions=IN_PORT"],
  ["actions=normal", "actions=NORMAL"],
  ["actions=5", "actions=output:5"],
  ["actions=LOCAL", "actions=LOCAL"],
  ["actions=flood,all", "actions=FLOOD,ALL"],
  ["actions=output:NXM_OF_IN_PORT[]", "actions=output:NXM_OF_IN_PORT[]"],
  ["actions=output:NXM_NX_REG0[0..15]", "actions=output:NXM_NX_REG0[0..15]"],
  ["actions=set_field:5->tun_id", "actions=load:0x5->NXM_NX_TUN_ID[]"],
  ["actions=set_field:0x5->metadata", "actions=load:0x5->OXM_OF_METADATA[]"],
  ["actions=set_field:0x1/0x1->reg0", "actions=load:0x1->NXM_NX_REG0[0]"],
  ["actions=load:0x001122334455->NXM_OF_ETH_SRC[]", "actions=load:0x1122334455->NXM_OF_ETH_SRC[]"],
  ["actions=load:5->OXM_OF_METADATA[]", "actions=load:0x5->OXM_OF_METADATA[]"],
  ["actions=load:0->NXM_OF_VLAN_TCI[]", "actions=load:0->NXM_OF_VLAN_TCI[]"],
  ["actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG1[]", "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG1[]"],
  ["actions=mod_nw_tos:8", "actions=mod_nw_tos:8"],
  ["actions=mod_tp_dst:80", "actions=mod_tp_dst:80"],
  ["actions=mod_vlan_vid:4095", "actions=mod_vlan_vid:4095"],
  ["actions=set_tunnel:0x100000000", "actions=set_tunnel64:0x100000000"],
  ["actions=set_tunnel64:5", "actions=set_tunnel64:0x5"],
  ["actions=resubmit(in_port,3)", "actions=resubmit(,3)"],
  ["actions=resubmit(LOCAL)", "actions=resubmit:LOCAL"],
  ["actions=note:aa", "actions=note:aa.00.00.00.00.00"],
  ["actions=note:00112233445566", "actions=note:00.11.22.33.44.55.66.00.00.00.00.00.00.00"],
  ["actions=note", "actions=note:00.00.00.00.00.00"],
  ["actions=goto_table:3", "actions=resubmit(,3)"],
  ["actions=ct_clear", "actions=ct_clear"],
  ["actions=learn(priority=32768,cookie=0,table=1)", "actions=learn(table=1)"],
  ["actions=learn()", "actions=learn(table=1)"],
  ["actions=drop", "actions=drop"],
  ["ip,actions=set_field:1.2.3.4->ip_src", "ip actions=mod_nw_src:1.2.3.4"],
  ["ip,actions=set_field:1.2.3.4->nw_dst", "ip actions=mod_nw_dst:1.2.3.4"],
  ["actions=mod_nw_src:1.2.3.4", "actions=mod_nw_src:1.2.3.4"],
  ["tcp,actions=mod_tp_src:1", "tcp actions=mod_tp_src:1"],
  ["dl_vlan=5,actions=set_field:4101->vlan_vid,set_field:3->vlan_pcp", "dl_vlan=5 actions=mod_vlan_vid:5,mod_vlan_pcp:3"],
  ["tcp,actions=set_field:80->tcp_dst,set_field:5->ip_dscp", "tcp actions=mod_tp_dst:80,mod_nw_tos:20"],
  ["arp,actions=set_field:2->arp_op,set_field:10.0.0.1->arp_spa,set_field:00:11:22:33:44:55->arp_sha", "arp actions=load:0x2->NXM_OF_ARP_OP[],load:0xa000001->NXM_OF_ARP_SPA[],load:0x1122334455->NXM_NX_ARP_SHA[]"],
  ["ipv6,actions=set_field:fe80::1->ipv6_src", "ipv6 actions=load:0x1->NXM_NX_IPV6_SRC[0..63],load:0xfe80000000000000->NXM_NX_IPV6_SRC[64..127]"],
  ["ip,actions=load:0x0a000001->NXM_OF_IP_SRC[]", "ip actions=load:0xa000001->NXM_OF_IP_SRC[]"],
  ["tcp,actions=move:NXM_NX_REG0[0..15]->NXM_OF_TCP_DST[]", "tcp actions=move:NXM_NX_REG0[0..15]->NXM_OF_TCP_DST[]"],
  ["ip,actions=ct", "ip actions=ct()"],
  ["ip,actions=ct(commit)", "ip actions=ct(commit)"],
  ["ip,actions=ct(zone=NXM_NX_REG0[0..15])", "ip actions=ct(zone=NXM_NX_REG0[0..15])"],
  ["ip,actions=ct(commit,force,zone=1,table=2)", "ip actions=ct(commit,force,table=2,zone=1)"],
  ["ip,actions=ct(nat)", "ip actions=ct(nat)"],
  ["ip,actions=ct(commit,nat(dst=10.0.0.1))", "ip actions=ct(commit,nat(dst=10.0.0.1))"],
  ["ip,actions=ct(commit,nat(src=10.0.0.1-10.0.0.9,random))", "ip actions=ct(commit,nat(src=10.0.0.1-10.0.0.9,random))"],
  ["ip,actions=ct(commit,nat(dst=10.0.0.1:80))", "ip actions=ct(commit,nat(dst=10.0.0.1:80))"],
  ["ip,actions=ct(commit,nat(src=10.0.0.1:80-90,persistent,hash))", "ip actions=ct(commit,nat(src=10.0.0.1:80-90,persistent,hash))"],
  ["ip,actions=ct(commit,exec(set_field:1->ct_mark))", "ip actions=ct(commit,exec(load:0x1->NXM_NX_CT_MARK[]))"],
  ["ip,actions=ct(table=5,zone=3,commit)", "ip actions=ct(commit,table=5,zone=3)"],
  ["ip,actions=learn(table=10,idle_timeout=10,hard_timeout=20,fin_idle_timeout=5,fin_hard_timeout=6,priority=5,cookie=0x9,delete_learned,send_flow_rem,eth_type=0x800,ip_src=1.2.3.4,NXM_OF_IP_DST[],load:5->NXM_NX_REG0[],load:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15])", "ip actions=learn(table=10,idle_timeout=10,hard_timeout=20,fin_idle_timeout=5,fin_hard_timeout=6,priority=5,send_flow_rem,delete_learned,cookie=0x9,eth_type=0x800,ip_src=1.2.3.4,NXM_OF_IP_DST[],load:0x5->NXM_NX_REG0[],load:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15])"],
  ["actions=learn(table=10,dl_dst=00:11:22:33:44:55,NXM_OF_VLAN_TCI[0..11]=0x5,load:0x5->NXM_NX_REG0[3..5],NXM_NX_REG1[]=NXM_NX_REG2[])", "actions=learn(table=10,eth_dst=00:11:22:33:44:55,NXM_OF_VLAN_TCI[0..11]=0x5,load:0x5->NXM_NX_REG0[3..5],NXM_NX_REG1[]=NXM_NX_REG2[])"],
  ["actions=mod_dl_src:00:11:22:33:44:55,mod_dl_dst:ff:ff:ff:ff:ff:ff,set_field:ff:00:00:00:00:01->eth_dst", "actions=mod_dl_src:00:11:22:33:44:55,mod_dl_dst:ff:ff:ff:ff:ff:ff,mod_dl_dst:ff:00:00:00:00:01"],
  ["actions=load:0x1->NXM_NX_REG0[5],load:0xffffffffffffffff->OXM_OF_METADATA[],load:0x1->NXM_NX_TUN_ID[0..31],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]", "actions=load:0x1->NXM_NX_REG0[5],load:0xffffffffffffffff->OXM_OF_METADATA[],load:0x1->NXM_NX_TUN_ID[0..31],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"],
  ["actions=set_field:0x5->tun_id,set_tunnel:5,output:1,output:NXM_NX_REG0[]", "actions=load:0x5->NXM_NX_TUN_ID[],set_tunnel:0x5,output:1,output:NXM_NX_REG0[]"],
  ["priority=1,dl_vlan=1,arp,arp_tpa=10.0.1.20,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000114->NXM_OF_ARP_SPA[],IN_PORT", "priority=1,arp,dl_vlan=1,arp_tpa=10.0.1.20 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000114->NXM_OF_ARP_SPA[],IN_PORT"],
  ["priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x8c4c7f2bd6e5f4ee,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1", "priority=1 actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x8c4c7f2bd6e5f4ee,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1"],
  ["priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2", "priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:20 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2"],
  ["priority=1,dl_vlan=1,actions=strip_vlan,set_tunnel:0x3e9,output:2,output:3", "priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x3e9,output:2,output:3"],
  ["priority=1,tun_id=0x3e9,actions=mod_vlan_vid:1,resubmit(,9)", "priority=1,tun_id=0x3e9 actions=mod_vlan_vid:1,resubmit(,9)"],
  ["priority=1,dl_vlan=1,dl_src=fa:16:3e:0a:00:01,actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)", "priority=1,dl_vlan=1,dl_src=fa:16:3e:0a:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)"],
  ["priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)", "priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)"],
  ["priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)", "priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff actions=resubmit(,21)"]
];

function printFlow(text: string): string {
  const f = parseFlow(text);
  const m = formatMatch(f.match, f.priority);
  return `${m}${m ? ' ' : ''}actions=${formatActions(f.actions)}`;
}

test('parse -> print equals ovs-ofctl parse-flow output for 142 verified flows', () => {
  for (const [input, expected] of VERIFIED) assert.equal(printFlow(input), expected, input);
});

test('printed flows parse back to the same text (round trip)', () => {
  for (const [, expected] of VERIFIED) assert.equal(printFlow(expected), expected, expected);
});

const OVS_OFCTL = '/usr/bin/ovs-ofctl';
test('live oracle: ovs-ofctl parse-flow agrees on every verified flow', { skip: !existsSync(OVS_OFCTL) }, () => {
  for (const [input] of VERIFIED) {
    const out = execFileSync(OVS_OFCTL, ['parse-flow', input], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = out.split('\n').find((l) => l.includes(' ADD ')) ?? '';
    assert.equal(printFlow(input), line.slice(line.indexOf(' ADD ') + 5), input);
  }
});

test('table, priority, cookie and timeouts are read into the spec', () => {
  const f = parseFlow('table=3,priority=5,cookie=0x5,idle_timeout=5,hard_timeout=6,send_flow_rem,ip,actions=drop');
  assert.equal(f.tableId, 3);
  assert.equal(f.priority, 5);
  assert.equal(f.cookie, 5n);
  assert.equal(f.idleTimeoutS, 5);
  assert.equal(f.hardTimeoutS, 6);
  assert.equal(f.flags, 1);
  assert.deepEqual(f.actions, []);
});

test('del takes a cookie mask (-1 = all ones) and out_port, add refuses a mask', () => {
  const d = parseFlow('cookie=0x10/0xf0,out_port=2,in_port=1', { command: 'del' });
  assert.equal(d.cookie, 0x10n);
  assert.equal(d.cookieMask, 0xf0n);
  assert.equal(d.outPort, 2);
  assert.equal(parseFlow('cookie=5/-1', { command: 'del' }).cookieMask, 0xffffffffffffffffn);
  assert.throws(() => parseFlow('cookie=5/0xff,actions=drop'), /cookie mask.*column 9 /);
  assert.throws(() => parseFlow('cookie=5', { command: 'del' }), /specify a mask.*column 8/);
});

test('port names resolve through the resolver', () => {
  const f = parseFlow('in_port=patch-int,actions=output:vxlan-c0a8640c', {
    resolvePort: (n) => ({ 'patch-int': 1, 'vxlan-c0a8640c': 7 } as Record<string, number>)[n],
  });
  assert.equal(printFlowSpec(f), 'in_port=1 actions=output:7');
});

function printFlowSpec(f: ReturnType<typeof parseFlow>): string {
  const m = formatMatch(f.match, f.priority);
  return `${m}${m ? ' ' : ''}actions=${formatActions(f.actions)}`;
}

/** [flow, 1-based column, fragment the message must contain] */
const ERRORS: [string, number, string][] = [
  ['in_port=1,bogus=3,actions=drop', 11, 'unknown field "bogus"'],
  ['dl_src=00:11:22:33:44,actions=drop', 8, 'expected a MAC address'],
  ['dl_dst=00:11:22:33:44:55/zz,actions=drop', 26, 'expected a MAC mask'],
  ['ip,nw_src=1.2.3.256,actions=drop', 11, 'expected an IPv4 address'],
  ['ip,nw_src=1.2.3.4/33,actions=drop', 19, 'prefix length 33 out of range'],
  ['ipv6,ipv6_src=fe80::1::2,actions=drop', 15, 'expected an IPv6 address'],
  ['dl_vlan=5000,actions=drop', 9, 'expected 0..4095'],
  ['dl_vlan_pcp=8,actions=drop', 13, 'expected 0..7'],
  ['tcp,tp_src=abc,actions=drop', 12, 'expected an integer'],
  ['ip,nw_frag=maybe,actions=drop', 12, 'expected one of no, yes, first, later, not_later'],
  ['ct_state=+trk+bogus,actions=drop', 15, 'unknown flag "bogus"'],
  ['tcp,tcp_flags=+syn+what,actions=drop', 20, 'unknown flag "what"'],
  ['ct_zone=0x5/0xff,actions=drop', 12, 'invalid mask'],
  ['reg0=0x100000000,actions=drop', 6, 'too large'],
  ['in_port=nosuch,actions=drop', 9, 'unknown port "nosuch"'],
  ['table=300,actions=drop', 7, 'expected a table number 0..254'],
  ['priority=70000,actions=drop', 10, 'expected a priority 0..65535'],
  ['in_port=1', 10, 'must specify an action'],
  ['in_port=1,actions=', 19, 'missing actions'],
  ['in_port=1,actions=output:2,drop', 28, '"drop" must not be accompanied'],
  ['actions=frobnicate', 9, 'unknown action "frobnicate"'],
  ['actions=output:70000', 16, 'out of range'],
  ['actions=mod_vlan_vid:4096', 22, 'expected a VLAN id 0..4095'],
  ['actions=mod_dl_src:zz', 20, 'expected a MAC address'],
  ['actions=mod_nw_tos:5', 20, 'ECN bits'],
  ['actions=load:0x5', 14, 'expected VALUE->FIELD[]'],
  ['actions=load:0x5->NXM_NX_NOPE[]', 19, 'unknown field "NXM_NX_NOPE"'],
  ['actions=load:0x5->NXM_NX_REG0[0..40]', 30, 'out of range for 32-bit field'],
  ['actions=load:0x100->NXM_NX_REG0[0..7]', 14, 'does not fit in 8 bits'],
  ['actions=move:NXM_NX_REG0[0..7]->NXM_NX_REG1[0..15]', 14, 'destination is 16 bits'],
  ['actions=set_field:1.2.3.4->ip_src', 9, 'lacks correct prerequisites'],
  ['actions=set_field:1->ct_mark', 22, 'cannot set CT fields outside of ct action'],
  ['actions=ct(commit)', 9, 'ct needs ip or ipv6'],
  ['ip,actions=ct(commit,bogus)', 22, 'unknown ct argument "bogus"'],
  ['ip,actions=ct(commit,nat(src=1.2.3.4-1.2.3.1))', 30, 'range must be ascending'],
  ['actions=resubmit(,300)', 19, 'expected a table number 0..254'],
  ['actions=resubmit:IN_PORT', 18, 'at least one "in_port" or "table"'],
  ['actions=note:abc', 14, 'pairs of hex digits'],
  ['actions=learn(table=20,bogus=1)', 24, 'unknown learn argument "bogus"'],
  ['actions=learn(NXM_OF_ETH_DST[]=NXM_NX_REG0[])', 32, 'destination is 48 bits'],
  ['actions=output:(2', 16, 'expected ")"'],
  ['actions=push_vlan:0x800', 19, 'expected 0x8100 or 0x88a8'],
];

test('every syntax error names the column and what was expected', () => {
  for (const [flow, col, frag] of ERRORS) {
    let err: unknown;
    try { parseFlow(flow); } catch (e) { err = e; }
    assert.ok(err instanceof FlowSyntaxError, `${flow}: expected FlowSyntaxError, got ${String(err)}`);
    assert.equal(err.code, 'E_FLOW_SYNTAX');
    assert.equal(err.flow, flow);
    assert.equal(err.column, col, `${flow}: ${err.message}`);
    assert.ok(err.message.includes(frag), `${flow}: "${err.message}" lacks "${frag}"`);
  }
});

test('flows files skip comments and blank lines; errors name file and line', () => {
  const specs = parseFlowsFile('# br-tun\n\ntable=0,priority=1,in_port=1,actions=resubmit(,2)\n  # indented comment\npriority=0,actions=drop\n', 'br-tun.flows');
  assert.equal(specs.length, 2);
  assert.equal(specs[0].tableId, 0);
  let err: unknown;
  try { parseFlowsFile('priority=0,actions=drop\n\npriority=1,dl_vlan=x,actions=drop\n', 'bad.flows'); } catch (e) { err = e; }
  assert.ok(err instanceof FlowSyntaxError);
  assert.equal(err.file, 'bad.flows');
  assert.equal(err.line, 3);
  assert.equal(err.column, 20);
  assert.match(err.message, /^bad\.flows:3: dl_vlan: /);
});

test('field table: NXM and OXM names, placement and bigint read/write', () => {
  const src = fieldByNxm('NXM_OF_ETH_SRC');
  assert.ok(src && src === fieldByName('eth_src') && src === fieldByName('dl_src'));
  const key = new Uint32Array(KEY_WORDS);
  writeField(src, key, 0, 0xfa163e000110n);
  assert.equal(key[W_DL_SRC_HI], 0xfa16);
  assert.equal(key[W_DL_SRC_LO], 0x3e000110);
  assert.equal(readField(src, key, 0), 0xfa163e000110n);
  const tci = fieldByNxm('NXM_OF_VLAN_TCI');
  assert.ok(tci);
  key[W_VLAN_DLTYPE] = 0x0800;
  writeSubfield(tci, 0, 12, key, 0, 5n);
  assert.equal(key[W_VLAN_DLTYPE], 0x00050800);
  assert.equal(readSubfield(tci, 0, 12, key, 0), 5n);
  const reg3 = fieldByNxm('NXM_NX_REG3');
  assert.ok(reg3);
  writeSubfield(reg3, 4, 4, key, 0, 0xfn);
  assert.equal(key[W_REG0 + 3], 0xf0);
  for (const n of ['NXM_OF_IN_PORT', 'NXM_OF_ETH_TYPE', 'NXM_OF_IP_SRC', 'NXM_OF_IP_DST', 'NXM_OF_IP_PROTO',
    'NXM_OF_IP_TOS', 'NXM_NX_IP_TTL', 'NXM_OF_TCP_SRC', 'NXM_OF_TCP_DST', 'NXM_OF_UDP_SRC', 'NXM_OF_UDP_DST',
    'NXM_OF_ICMP_TYPE', 'NXM_OF_ICMP_CODE', 'NXM_OF_ARP_OP', 'NXM_OF_ARP_SPA', 'NXM_OF_ARP_TPA',
    'NXM_NX_ARP_SHA', 'NXM_NX_ARP_THA', 'NXM_NX_TUN_ID', 'NXM_NX_TUN_IPV4_SRC', 'NXM_NX_TUN_IPV4_DST',
    'NXM_NX_REG15', 'OXM_OF_METADATA', 'NXM_NX_IPV6_SRC', 'NXM_NX_IPV6_DST', 'NXM_NX_CT_STATE',
    'NXM_NX_CT_ZONE', 'NXM_NX_CT_MARK']) {
    assert.ok(fieldByNxm(n), n);
  }
  for (const n of ['eth_src', 'vlan_vid', 'vlan_pcp', 'ip_src', 'tcp_dst', 'arp_op', 'tunnel_id', 'metadata', 'reg0']) {
    assert.ok(fieldByName(n), n);
  }
});

test('IPv6 text: inet_ntop-style printing', () => {
  for (const [i, o] of [['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['::', '::'], ['fe80::', 'fe80::'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'], ['::ffff:1.2.3.4', '::ffff:1.2.3.4']] as const) {
    const v = parseIpv6(i);
    assert.ok(v !== undefined, i);
    assert.equal(formatIpv6(v), o);
  }
});
