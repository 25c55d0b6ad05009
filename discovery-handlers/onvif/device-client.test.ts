import { describe, expect, it } from 'vitest';
import {
  readDeviceInformation,
  readMediaServiceFromCapabilities,
  readMediaServiceFromServices,
  readNetworkInterfaces,
  readProfiles,
  readStreamUri,
  readSystemDateAndTime,
  sanitizeStreamUri,
} from './device-client.ts';
import { parseXml, type XmlNode } from './xml.ts';

const body = (inner: string): XmlNode =>
  (
    parseXml(
      `<s:Envelope xmlns:s="urn:s" xmlns:tds="urn:tds" xmlns:tt="urn:tt" xmlns:trt="urn:trt"><s:Body>${inner}</s:Body></s:Envelope>`,
      1 << 20,
    )['Envelope'] as XmlNode
  )['Body'] as XmlNode;

describe('ONVIF response parsing', () => {
  it('reads the camera clock', () => {
    const b = body(
      '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time><tt:Hour>7</tt:Hour><tt:Minute>50</tt:Minute><tt:Second>45</tt:Second></tt:Time>' +
        '<tt:Date><tt:Year>2010</tt:Year><tt:Month>9</tt:Month><tt:Day>16</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>',
    );
    expect(readSystemDateAndTime(b)).toBe(Date.parse('2010-09-16T07:50:45Z'));
    expect(readSystemDateAndTime(body('<tds:GetSystemDateAndTimeResponse/>'))).toBeUndefined();
    expect(
      readSystemDateAndTime(
        body(
          '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time><tt:Hour>25</tt:Hour><tt:Minute>0</tt:Minute><tt:Second>0</tt:Second></tt:Time><tt:Date><tt:Year>2010</tt:Year><tt:Month>9</tt:Month><tt:Day>16</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>',
        ),
      ),
    ).toBeUndefined();
  });

  it('reads device information, cleaning control characters and keeping leading zeros', () => {
    const b = body(
      '<tds:GetDeviceInformationResponse><tds:Manufacturer>AXIS &amp; Co</tds:Manufacturer><tds:Model>P1375\u0007-E</tds:Model>' +
        `<tds:FirmwareVersion>10.12</tds:FirmwareVersion><tds:SerialNumber>000123</tds:SerialNumber><tds:HardwareId>${'h'.repeat(400)}</tds:HardwareId></tds:GetDeviceInformationResponse>`,
    );
    expect(readDeviceInformation(b)).toEqual({
      manufacturer: 'AXIS & Co',
      model: 'P1375 -E',
      firmwareVersion: '10.12',
      serialNumber: '000123',
      hardwareId: 'h'.repeat(256),
    });
  });

  it('finds the media service in GetServices and GetCapabilities', () => {
    expect(
      readMediaServiceFromServices(
        body(
          '<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.7/onvif/device_service</tds:XAddr></tds:Service>' +
            '<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.7/onvif/Media</tds:XAddr></tds:Service></tds:GetServicesResponse>',
        ),
      ),
    ).toBe('http://10.0.0.7/onvif/Media');
    expect(
      readMediaServiceFromCapabilities(
        body(
          '<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://10.0.0.7/media</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>',
        ),
      ),
    ).toBe('http://10.0.0.7/media');
    expect(
      readMediaServiceFromCapabilities(
        body(
          '<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>javascript:alert(1)</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>',
        ),
      ),
    ).toBeUndefined();
  });

  it('reads network interfaces', () => {
    const b = body(
      '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Info><tt:HwAddress>AC-CC-8E-01-02-03</tt:HwAddress></tt:Info>' +
        '<tt:IPv4><tt:Config><tt:Manual><tt:Address>10.0.0.7</tt:Address></tt:Manual><tt:FromDHCP><tt:Address>10.0.0.99</tt:Address></tt:FromDHCP></tt:Config></tt:IPv4></tds:NetworkInterfaces>' +
        '</tds:GetNetworkInterfacesResponse>',
    );
    expect(readNetworkInterfaces(b)).toEqual([{ mac: 'ac:cc:8e:01:02:03', ipv4: ['10.0.0.7', '10.0.0.99'] }]);
  });

  it('reads profiles (token attribute, encoder, resolution), capped at 16', () => {
    const profile = (i: number): string =>
      `<trt:Profiles token="p&amp;${i}" fixed="true"><tt:Name>Profile ${i}</tt:Name><tt:VideoEncoderConfiguration><tt:Encoding>H264</tt:Encoding>` +
      '<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>';
    const profiles = readProfiles(
      body(
        `<trt:GetProfilesResponse>${Array.from({ length: 20 }, (_, i) => profile(i)).join('')}<trt:Profiles/></trt:GetProfilesResponse>`,
      ),
    );
    expect(profiles).toHaveLength(16);
    expect(profiles[0]).toEqual({ token: 'p&0', name: 'Profile 0', encoding: 'H264', width: 1920, height: 1080 });
  });

  it('reads a stream URI without credentials', () => {
    expect(
      readStreamUri(
        body(
          '<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://admin:secret@10.0.0.7:554/s1?user=admin&amp;password=secret&amp;ch=1</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>',
        ),
      ),
    ).toBe('rtsp://10.0.0.7:554/s1?ch=1');
  });

  it.each([
    ['rtsp://10.0.0.7/stream1', 'rtsp://10.0.0.7/stream1'],
    ['rtsp://user:pw@10.0.0.7:554/a', 'rtsp://10.0.0.7:554/a'],
    ['rtsp://user@10.0.0.7/a', 'rtsp://10.0.0.7/a'],
    ['rtsp://10.0.0.7/a?PWD=x&Token=y&profile=2', 'rtsp://10.0.0.7/a?profile=2'],
    ['http://10.0.0.7/mjpeg', 'http://10.0.0.7/mjpeg'],
    ['file:///etc/passwd', undefined],
    ['javascript:alert(1)', undefined],
    ['not a uri', undefined],
    [`rtsp://10.0.0.7/${'a'.repeat(3000)}`, undefined],
  ])('sanitizeStreamUri(%s) = %s', (input, output) => expect(sanitizeStreamUri(input)).toBe(output));
});
