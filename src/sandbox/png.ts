import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** '#07c160' or '07C160' -> { r, g, b }; undefined when it is not a 6-digit hex colour. */
export function parseHexColor(value: string): Rgb | undefined {
  const match = /^#?([0-9a-f]{6})$/i.exec(value);
  if (!match) return undefined;
  const n = Number.parseInt(match[1]!, 16);
  return { r: (n >> 16) & 0xff, g: (n >> 8) & 0xff, b: n & 0xff };
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A square, single-colour, 8-bit RGB PNG: a real image, so avatar downloads and caches can be tested. */
export function solidPng(size: number, color: Rgb): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour RGB
  // bytes 10-12: compression, filter and interlace methods, all 0
  const row = Buffer.alloc(1 + size * 3); // leading 0 = filter "none"
  for (let x = 0; x < size; x++) {
    row[1 + x * 3] = color.r;
    row[2 + x * 3] = color.g;
    row[3 + x * 3] = color.b;
  }
  const raw = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
