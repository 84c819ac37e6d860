// Package iproute parses the text that iproute2 prints — `ip addr show`,
// `ip route show`, `ip neigh`, `ip rule` — into model values.
//
// The input is what users paste into tickets, so the parsers accept it as
// printed, with a few conveniences that never change meaning:
//
//   - blank lines are skipped;
//   - lines whose first non-blank character is '#' are comments;
//   - a shell prompt line with the command that produced the output
//     ("[root@mayura ~]# ip addr show", "root@host:~# ip r", "$ ip a") is
//     skipped, as is a Markdown code fence ("```");
//   - trailing spaces and CR line ends are ignored.
//
// Everything else must be understood. A route or rule keyword the model
// cannot represent (source-specific routes, tos, encap, uidrange,
// suppress_prefixlength ...) is an error that names the keyword rather than
// a fact silently dropped: a trace built on a half-read table would be
// wrong without saying so. Keywords that cannot change where a packet goes
// (pref, expires, linkdown, offload flags, TCP metrics such as advmss) are
// accepted and ignored.
//
// Errors are *ingest.Error with the file, the 1-based line and its text.
// Parsers never panic and never return partial results with a nil error.
// The parsers are hand-written token scanners: inputs can be large
// (`ip route show table all` on a router) and are parsed on every run.
package iproute
