package netfilter

import "testing"

func TestSmoke(t *testing.T) {
	c := mustCompile(t, 4, `
*nat
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 172.18.0.2:6443" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 172.18.0.3:6443" -j KUBE-SEP-B
-A KUBE-SEP-A -s 172.18.0.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 172.18.0.2:6443
-A KUBE-SEP-B -s 172.18.0.3/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 172.18.0.3:6443
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
:KUBE-NODEPORTS - [0:0]
`)
	ctx := newCtx(tcpPkt("192.168.1.5", 40000, "10.96.0.1", 443))
	ctx.Choose = func(what string, p float64) bool { t.Logf("choose %s %v", what, p); return false }
	r := c.Run("nat", PreRouting, ctx)
	t.Log(dump(r))
	t.Log(trail(r))
}
