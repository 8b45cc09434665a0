/*
 * scatter-recv.c -- what an AF_PACKET read of a 64 KB VXLAN UDP GSO frame costs (A) into one
 * iovec plus the copy of its inner payloads into an output buffer (what coalesce does,
 * src/native/tunnel-offload.c), against (B) one read scattered over an iovec per datagram
 * header and per payload so that the payloads land back to back (no copy). Measured for
 * native-notes/tunnel-gso.md (2026-12-05, p16i); times only the recvmsg (+ the copy for A).
 *
 * Build: gcc -O2 -o scatter-recv tools/scatter-recv.c
 * Run (root, a namespace with a veth pair fi-a <-> fi-b, both up, MTU 65535):
 *   scatter-recv [frames [payload [datagrams [rotating buffers]]]]   defaults 2000 1398 44 1
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <arpa/inet.h>
struct vh { uint8_t flags, gso_type; uint16_t hdr_len, gso_size, csum_start, csum_offset; } __attribute__((packed));
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static int open_pk(const char *ifn){
  int fd=socket(AF_PACKET,SOCK_RAW,htons(ETH_P_ALL)); if(fd<0){perror("socket");exit(1);}
  int one=1; if(setsockopt(fd,SOL_PACKET,PACKET_VNET_HDR,&one,sizeof one)){perror("vnet");exit(1);}
  struct sockaddr_ll sa={0}; sa.sll_family=AF_PACKET; sa.sll_protocol=htons(ETH_P_ALL); sa.sll_ifindex=if_nametoindex(ifn);
  if(bind(fd,(void*)&sa,sizeof sa)){perror("bind");exit(1);} return fd;}
int main(int argc,char**argv){
  int R=argc>4?atoi(argv[4]):1; int iters=argc>1?atoi(argv[1]):2000; uint32_t pay=argc>2?atoi(argv[2]):1398; uint32_t nseg=argc>3?atoi(argv[3]):44;
  int tx=open_pk("fi-a"), rx=open_pk("fi-b");
  int rcvbuf=4<<20; setsockopt(rx,SOL_SOCKET,SO_RCVBUF,&rcvbuf,sizeof rcvbuf);
  uint32_t ih=66, G=8+ih+pay, len=42+nseg*G;
  uint8_t *f=calloc(1,len+64);
  uint8_t hdr[42]={2,0,0,0,0,2, 2,0,0,0,0,1, 8,0, 0x45,0,0,0,0,0,0x40,0,64,17,0,0, 10,9,9,1, 10,9,9,2, 0xc0,1,0x12,0xb5,0,0,0,0};
  memcpy(f,hdr,42); f[16]=(len-14)>>8; f[17]=(len-14); f[38]=(len-34)>>8; f[39]=len-34;
  for(uint32_t k=0;k<nseg;k++){uint8_t*d=f+42+k*G; d[0]=8; d[6]=0x03; d[7]=0xea; d[8+12]=8; for(uint32_t j=0;j<pay;j++)d[8+ih+j]=(uint8_t)(k+j);}
  struct vh v={1,5,0,(uint16_t)G,34,6};
  uint8_t *slot0=aligned_alloc(4096,(size_t)R<<17), *out0=aligned_alloc(4096,(size_t)R<<17), *bs0=aligned_alloc(4096,(size_t)R<<17), *hs=aligned_alloc(4096,1<<16);
  memset(slot0,0,(size_t)R<<17);memset(out0,0,(size_t)R<<17);memset(bs0,0,(size_t)R<<17);memset(hs,0,1<<16);
  struct iovec *iov=calloc(2*nseg+4,sizeof *iov);
  double *ta=calloc(iters,8),*tb=calloc(iters,8),*tr=calloc(iters,8); int na=0,nb=0; uint64_t chk=0;
  for(int it=0;it<iters*2;it++){
    struct iovec tv[2]={{&v,sizeof v},{f,len}}; struct msghdr tm={0}; tm.msg_iov=tv; tm.msg_iovlen=2;
    if(sendmsg(tx,&tm,0)<0){perror("send");exit(1);}
    struct vh rv; struct msghdr m={0}; int B=it&1; int ni; uint8_t *slot=(B?bs0:slot0)+((size_t)(it/2%R)<<17), *out=out0+((size_t)(it/2%R)<<17);
    if(!B){ iov[0]=(struct iovec){&rv,sizeof rv}; iov[1]=(struct iovec){slot,65536}; ni=2; }
    else { /* outer 50 + frame0 contiguous in slot, then per segment hdr -> hs, payload -> slot adjacent */
      iov[0]=(struct iovec){&rv,sizeof rv}; iov[1]=(struct iovec){slot,42+G}; ni=2; uint32_t p=42+G;
      for(uint32_t k=1;k<nseg;k++){iov[ni++]=(struct iovec){hs+k*80,8+ih}; iov[ni++]=(struct iovec){slot+p,pay}; p+=pay;}
      iov[ni++]=(struct iovec){hs, 4096};
    }
    m.msg_iov=iov; m.msg_iovlen=ni;
    double t0=now(); ssize_t n=recvmsg(rx,&m,0);
    if(n<0){perror("recv");exit(1);}
    if((size_t)n!=len+10){ it--; continue; } /* other traffic (ipv6 nd ...) */
    double tm_=now(); if(!B){ uint32_t p=42+G; memcpy(out,slot,p); for(uint32_t k=1;k<nseg;k++){memcpy(out+p,slot+42+k*G+8+ih,pay);p+=pay;} }
    double t1=now();
    chk+=B?slot[42+G+5]:out[42+G+5];
    if(B) tb[nb++]=t1-t0; else {tr[na]=tm_-t0; ta[na++]=t1-t0;}
  }
  qsort(ta,na,8,cmpd);qsort(tr,na,8,cmpd);qsort(tb,nb,8,cmpd);
  printf("R=%d recvA med %.0f | ",R,tr[na/2]); printf("nseg=%u pay=%u len=%u  A(1 iov+memcpy) med %.0f ns p10 %.0f | B(scatter %u iov) med %.0f ns p10 %.0f  (chk %lu)\n",
    nseg,pay,len,ta[na/2],ta[na/10],2*nseg+1,tb[nb/2],tb[nb/10],(unsigned long)chk);
  return 0;}
