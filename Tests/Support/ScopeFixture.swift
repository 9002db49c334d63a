import Foundation

/// A small two-site configuration (docs/cluster.md): imported with the built CLI,
/// then given variants with the CLI's own scope commands, so the tests see what an
/// operator's commands store.
///
/// Nodes: `sitea` and `siteb` are in the group `@eu`; `sitec` is in no group.
/// - sofia.conf: profile internal's `sip-ip` is `$${local_ip_v4}`, with a
///   `{sitea}` variant `10.0.0.1`; profile external has a gateway `everywhere` and
///   a `{sitea}` gateway `carrier-a`.
/// - directory `$${domain}` (example.test): user 1000's gateway `carrier-b` is `{@eu}`.
/// - dialplan `default`: `ring` (bridge to user/1000), a second `ring` limited to
///   `{siteb}` (bridge to the gateway), `site_a_only` `{sitea}`, `last`.
/// - globals: `outbound_proxy` is `proxy.example`, and `proxy-a.example` for `{sitea}`.
public enum ScopeFixture {
    public static let freeswitchXML = """
        <?xml version="1.0"?>
        <document type="freeswitch/xml">
          <X-PRE-PROCESS cmd="set" data="domain=example.test"/>
          <X-PRE-PROCESS cmd="set" data="outbound_proxy=proxy.example"/>
          <section name="configuration" description="Various Configuration">
            <configuration name="sofia.conf" description="sofia Endpoint">
              <global_settings><param name="log-level" value="0"/></global_settings>
              <profiles>
                <profile name="internal">
                  <settings>
                    <param name="sip-ip" value="$${local_ip_v4}"/>
                    <param name="sip-port" value="5060"/>
                    <param name="context" value="default"/>
                  </settings>
                </profile>
                <profile name="external">
                  <gateways>
                    <gateway name="everywhere"><param name="proxy" value="$${outbound_proxy}"/></gateway>
                  </gateways>
                  <settings><param name="sip-port" value="5080"/></settings>
                </profile>
              </profiles>
            </configuration>
          </section>
          <section name="dialplan" description="Regex/XML Dialplan">
            <context name="default">
              <extension name="ring">
                <condition field="destination_number" expression="^100$"><action application="bridge" data="user/1000"/></condition>
              </extension>
              <extension name="ring">
                <condition field="destination_number" expression="^100$"><action application="bridge" data="sofia/gateway/carrier-b/100"/></condition>
              </extension>
              <extension name="site_a_only">
                <condition field="destination_number" expression="^200$"><action application="answer"/></condition>
              </extension>
              <extension name="last">
                <condition field="destination_number" expression="^300$"><action application="hangup"/></condition>
              </extension>
            </context>
          </section>
          <section name="directory" description="User Directory">
            <domain name="$${domain}">
              <groups><group name="default"><users>
                <user id="1000">
                  <params><param name="password" value="1234"/></params>
                  <gateways>
                    <gateway name="carrier-b"><param name="proxy" value="$${outbound_proxy}"/><param name="register" value="false"/></gateway>
                  </gateways>
                </user>
                <user id="1001"><params><param name="password" value="5678"/></params></user>
              </users></group></groups>
            </domain>
          </section>
        </document>
        """

    static let internalParams = "configuration/sofia.conf/profiles/profile[name=internal]/settings"
    static let externalGateways = "configuration/sofia.conf/profiles/profile[name=external]/gateways"

    /// The CLI commands that give the imported tree its variants, in order.
    public static let commands: [[String]] = [
        ["scope", "group", "eu", "sitea", "siteb"],
        ["set", "\(internalParams)/param[name=sip-ip]{sitea}/@value", "10.0.0.1"],
        ["set", "\(externalGateways)/gateway[name=carrier-a]{sitea}/@name", "carrier-a"],
        ["set", "\(externalGateways)/gateway[name=carrier-a]{sitea}/param[name=proxy]/@value", "carrier-a.example"],
        ["scope", "set", "directory/$${domain}/user/1000/gateway/carrier-b", "@eu"],
        ["scope", "set", "dialplan/default/extension[2]", "siteb"],
        ["scope", "set", "dialplan/default/extension[name=site_a_only]", "sitea"],
        ["set", "globals/outbound_proxy{sitea}", "proxy-a.example"],
    ]

    /// Writes the tree into `dir`, imports it into the database of `environment`
    /// and runs `commands`; throws with the CLI's output when one fails.
    public static func load(into dir: TemporaryDirectory, environment: [String: String]) throws {
        try dir.write("scope-tree.xml", freeswitchXML)
        var steps: [[String]] = [["import", dir.path("scope-tree.xml"), "--quiet"]]
        steps += commands
        for args in steps {
            let out = try runProcess(TestEnvironment.fsconfBinary, args, environment: environment, timeout: 120)
            guard out.status == 0 else { throw TestSetupError("fsconf \(args.joined(separator: " ")) failed: \(out)") }
        }
    }
}
