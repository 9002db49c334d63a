-- Baseline D: a FusionPBX-style directory handler (app/xml_handler/.../directory.lua,
-- reduced to one flat SELECT, without its memcache): quote the SIP input into SQL
-- text, one query through the Dbh stand-in (benchmarks/host/dbh.c), the document
-- built with table.insert and table.concat. Values are not XML-escaped (as there).
-- The benchmark writes it with @DBH@ and @CONNINFO@ replaced.
local dbh = package.loadlib("@DBH@", "luaopen_benchdbh")().connect("@CONNINFO@")
local function quote(s) return "'" .. string.gsub(s, "'", "''") .. "'" end
local domain_name = params:getHeader("domain")
local user = params:getHeader("user")
local xml = {}
local sql = "SELECT * FROM bench_flat.v_extensions WHERE domain_name = " .. quote(domain_name)
    .. " AND (extension = " .. quote(user) .. " OR number_alias = " .. quote(user) .. ") AND enabled = 'true'"
dbh:query(sql, function(row)
    table.insert(xml, [[<?xml version="1.0" encoding="UTF-8" standalone="no"?>]])
    table.insert(xml, [[<document type="freeswitch/xml">]])
    table.insert(xml, [[  <section name="directory">]])
    table.insert(xml, [[    <domain name="]] .. domain_name .. [[" alias="true">]])
    table.insert(xml, [[      <params>]])
    table.insert(xml, [[        <param name="jsonrpc-allowed-methods" value="verto"/>]])
    table.insert(xml, [[        <param name="jsonrpc-allowed-event-channels" value="demo,conference,presence"/>]])
    table.insert(xml, [[        <param name="dial-string" value="{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})},${verto_contact(${dialed_user}@${dialed_domain})}"/>]])
    table.insert(xml, [[      </params>]])
    table.insert(xml, [[      <variables>]])
    table.insert(xml, [[        <variable name="record_stereo" value="true"/>]])
    table.insert(xml, [[        <variable name="default_gateway" value="example.com"/>]])
    table.insert(xml, [[        <variable name="default_areacode" value="918"/>]])
    table.insert(xml, [[        <variable name="transfer_fallback_extension" value="operator"/>]])
    table.insert(xml, [[      </variables>]])
    table.insert(xml, [[      <groups>]])
    table.insert(xml, [[        <group name="default">]])
    table.insert(xml, [[          <users>]])
    table.insert(xml, [[            <user id="]] .. row.extension .. [[">]])
    table.insert(xml, [[              <params>]])
    table.insert(xml, [[                <param name="password" value="]] .. row.password .. [["/>]])
    table.insert(xml, [[                <param name="vm-password" value="]] .. row.vm_password .. [["/>]])
    table.insert(xml, [[              </params>]])
    table.insert(xml, [[              <variables>]])
    table.insert(xml, [[                <variable name="toll_allow" value="]] .. row.toll_allow .. [["/>]])
    table.insert(xml, [[                <variable name="accountcode" value="]] .. row.accountcode .. [["/>]])
    table.insert(xml, [[                <variable name="user_context" value="]] .. row.user_context .. [["/>]])
    table.insert(xml, [[                <variable name="effective_caller_id_name" value="]] .. row.effective_caller_id_name .. [["/>]])
    table.insert(xml, [[                <variable name="effective_caller_id_number" value="]] .. row.effective_caller_id_number .. [["/>]])
    table.insert(xml, [[                <variable name="outbound_caller_id_name" value="]] .. row.outbound_caller_id_name .. [["/>]])
    table.insert(xml, [[                <variable name="outbound_caller_id_number" value="]] .. row.outbound_caller_id_number .. [["/>]])
    table.insert(xml, [[                <variable name="callgroup" value="]] .. row.call_group .. [["/>]])
    table.insert(xml, [[              </variables>]])
    table.insert(xml, [[            </user>]])
    table.insert(xml, [[          </users>]])
    table.insert(xml, [[        </group>]])
    table.insert(xml, [[      </groups>]])
    table.insert(xml, [[    </domain>]])
    table.insert(xml, [[  </section>]])
    table.insert(xml, [[</document>]])
end)
if #xml > 0 then
    XML_STRING = table.concat(xml, "\n")
else
    XML_STRING = [[<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>]]
end
