"""A small os-ken controller application for flowd (OpenFlow 1.0).

When a switch connects (flowd dials out to the controller configured for a bridge), the app
installs two flows that join OpenFlow ports 1 and 2 for IPv4 (cookie 0x42) and a table-miss
flow that sends everything else to the controller, asks for a barrier, then reads the flow
statistics back and prints one line per flow:

    FLOW table=0 priority=100 cookie=0x42 in_port=1 packets=0 bytes=0 actions=OUTPUT:2

Everything else (ARP) comes up as a packet-in, which the app answers with a packet-out of the
same frame to the other port, so two hosts on ports 1 and 2 can ping only through this
reactive loop:

    PACKET_IN in_port=1 reason=1 total_len=42 buffer_id=0xffffffff

Run: osken-manager --ofp-listen-host 127.0.0.1 --ofp-tcp-listen-port 6633 flowd_app.py
Used by test/control/openflow/os-ken.test.ts.
"""
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_0


class FlowdApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_0.OFP_VERSION]

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        ofp = dp.ofproto
        parser = dp.ofproto_parser
        print("CONNECTED dpid=%016x ports=%d" % (dp.id, len(ev.msg.ports)), flush=True)
        for in_port, out_port in ((1, 2), (2, 1)):
            dp.send_msg(parser.OFPFlowMod(
                datapath=dp, match=parser.OFPMatch(in_port=in_port, dl_type=0x0800), cookie=0x42,
                command=ofp.OFPFC_ADD, priority=100,
                actions=[parser.OFPActionOutput(out_port)]))
        dp.send_msg(parser.OFPFlowMod(
            datapath=dp, match=parser.OFPMatch(), cookie=0x42, command=ofp.OFPFC_ADD, priority=0,
            actions=[parser.OFPActionOutput(ofp.OFPP_CONTROLLER, 0xffff)]))
        dp.send_msg(parser.OFPBarrierRequest(dp))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        parser = dp.ofproto_parser
        print("PACKET_IN in_port=%d reason=%d total_len=%d buffer_id=0x%x" % (
            msg.in_port, msg.reason, msg.total_len, msg.buffer_id), flush=True)
        out_port = 2 if msg.in_port == 1 else 1
        dp.send_msg(parser.OFPPacketOut(
            datapath=dp, buffer_id=0xffffffff, in_port=msg.in_port,
            actions=[parser.OFPActionOutput(out_port)], data=msg.data))
        print("PACKET_OUT in_port=%d out_port=%d len=%d" % (msg.in_port, out_port, len(msg.data)), flush=True)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        dp = ev.msg.datapath
        parser = dp.ofproto_parser
        dp.send_msg(parser.OFPFlowStatsRequest(
            dp, 0, parser.OFPMatch(), 0xff, dp.ofproto.OFPP_NONE))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_reply(self, ev):
        for s in ev.msg.body:
            actions = ",".join("OUTPUT:%d" % a.port for a in s.actions if hasattr(a, "port"))
            print("FLOW table=%d priority=%d cookie=0x%x in_port=%s packets=%d bytes=%d actions=%s" % (
                s.table_id, s.priority, s.cookie, s.match.in_port, s.packet_count,
                s.byte_count, actions or "other"), flush=True)
        print("STATS_DONE", flush=True)
