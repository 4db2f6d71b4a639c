"""The LSP edge: the pygls server and its handlers, the conversions to and from
lsprotocol types, the document mirror and notebook views. The only package that
imports lsprotocol or pygls."""
