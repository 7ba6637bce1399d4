import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import {
  checkWatermark,
  decodeEncryptedUserData,
  decryptUserData,
  rawDataSignature,
  UserDataError,
  type UserDataProblem,
  verifyRawData,
} from '../../src/mini-program/user-data.ts';
import { encryptOpenData, newSessionKey } from '../../src/sandbox/mini-program-crypto.ts';
import { sessionSignature } from '../../src/upstream/wechat/mini-program.ts';

// WeChat's official test vectors (wechat-api.md §9, §10; the WXBizDataCrypt demo).
const VECTOR = {
  appid: 'wx4f4bc4dec97d474b',
  sessionKey: 'tiihtNczf5v6AKRyjwEUhQ==',
  iv: 'r7BXXKkLb8qrSNn05n0qiA==',
  encryptedData:
    'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==',
  timestamp: 1477314187,
};
const RAW_DATA =
  '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}';
const RAW_DATA_KEY = 'HyVFkGl5F5OQWJZZaNzBBg==';
const HMAC_KEY = 'o0q0otL8aEzpcZL/FT9WsQ==';

function problemOf(run: () => unknown): UserDataProblem | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof UserDataError) return error.problem;
    throw error;
  }
}

const decryptVector = (input: Partial<typeof VECTOR> = {}) => {
  const { sessionKey, ...rest } = { ...VECTOR, ...input };
  return decryptUserData(new Secret(sessionKey), decodeEncryptedUserData(rest));
};

describe("WeChat's official vectors", () => {
  it('decrypts the official encryptedData to the documented user info', () => {
    expect(decryptVector()).toEqual({
      openId: 'oGZUI0egBJY1zhBYw2KhdUfwVJJE',
      nickName: 'Band',
      gender: 1,
      language: 'zh_CN',
      city: 'Guangzhou',
      province: 'Guangdong',
      country: 'CN',
      avatarUrl:
        'http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0',
      unionId: 'ocMvos6NjeKLIBqg5Mr9QjxrP1FA',
      watermark: { timestamp: VECTOR.timestamp, appid: VECTOR.appid },
    });
  });

  it('signs the official rawData as sha1(rawData + session_key)', () => {
    expect(rawDataSignature(RAW_DATA, new Secret(RAW_DATA_KEY))).toBe(
      '75e81ceda165f4ffa64f4068af58c64b8f54b88c',
    );
    expect(() =>
      verifyRawData(RAW_DATA, '75E81CEDA165F4FFA64F4068AF58C64B8F54B88C', new Secret(RAW_DATA_KEY)),
    ).not.toThrow();
    expect(
      problemOf(() =>
        verifyRawData(`${RAW_DATA} `, '75e81ceda165f4ffa64f4068af58c64b8f54b88c', new Secret(RAW_DATA_KEY)),
      ),
    ).toBe('signature_mismatch');
  });

  it('signs checksession with HMAC-SHA256 keyed by the base64 text, lowercase hex', () => {
    expect(sessionSignature(new Secret(HMAC_KEY), '{"foo":"bar"}')).toBe(
      '654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b',
    );
    expect(sessionSignature(new Secret(HMAC_KEY), '')).toBe(
      '46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128',
    );
  });
});

describe('precise refusals', () => {
  it.each([
    {
      name: 'iv with a space where a "+" was',
      input: { iv: VECTOR.iv.replace('r', ' ') },
      problem: 'invalid_base64',
    },
    {
      name: 'URL-safe base64',
      input: { encryptedData: VECTOR.encryptedData.replaceAll('+', '-') },
      problem: 'invalid_base64',
    },
    {
      name: 'base64 without its padding',
      input: { iv: VECTOR.iv.replace('==', '') },
      problem: 'invalid_base64',
    },
    { name: 'empty encryptedData', input: { encryptedData: '' }, problem: 'invalid_base64' },
    {
      name: 'an iv of 12 bytes',
      input: { iv: Buffer.alloc(12).toString('base64') },
      problem: 'invalid_length',
    },
    {
      name: 'encryptedData cut mid-block',
      input: {
        encryptedData: Buffer.from(VECTOR.encryptedData, 'base64').subarray(0, 40).toString('base64'),
      },
      problem: 'invalid_length',
    },
    { name: 'another session key', input: { sessionKey: RAW_DATA_KEY }, problem: 'undecryptable' },
  ] as const)('$name: $problem', ({ input, problem }) => {
    expect(problemOf(() => decryptVector(input))).toBe(problem);
  });

  it('tells broken JSON from a wrong key', () => {
    const key = newSessionKey();
    const { encryptedData, iv } = encryptOpenData(key, 'not json');
    expect(
      problemOf(() => decryptUserData(new Secret(key), decodeEncryptedUserData({ encryptedData, iv }))),
    ).toBe('undecryptable');
  });

  it('checks every padding byte, not only the last', () => {
    const key = newSessionKey();
    const iv = Buffer.alloc(16, 7);
    // One block: 7 bytes of JSON, then what ends like PKCS#7 padding of 3 but is not ([5, 5, 3]).
    const block = Buffer.concat([Buffer.from('{"a":1}'), Buffer.from([5, 5, 5, 5, 5, 5, 5, 5, 3])]);
    expect(block).toHaveLength(16);
    const cipher = createCipheriv('aes-128-cbc', Buffer.from(key, 'base64'), iv);
    cipher.setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(block), cipher.final()]);
    expect(problemOf(() => decryptUserData(new Secret(key), { ciphertext, iv }))).toBe('undecryptable');
  });

  it('checks the watermark: this app, and fresh', () => {
    const data = decryptVector();
    const policy = { appid: VECTOR.appid, now: VECTOR.timestamp + 60, maxAgeSeconds: 600 };
    expect(() => checkWatermark(data, policy)).not.toThrow();
    expect(problemOf(() => checkWatermark(data, { ...policy, appid: 'wx0123456789abcdef' }))).toBe(
      'watermark_appid_mismatch',
    );
    expect(problemOf(() => checkWatermark(data, { ...policy, now: VECTOR.timestamp + 601 }))).toBe(
      'watermark_stale',
    );
    expect(problemOf(() => checkWatermark(data, { ...policy, now: VECTOR.timestamp - 3600 }))).toBe(
      'watermark_stale',
    );
    expect(problemOf(() => checkWatermark({ openId: 'x' }, policy))).toBe('undecryptable');
  });
});

describe("the sandbox's encryption and the bridge's decryption agree", () => {
  it('round-trips Chinese and emoji with a fresh 16-byte key and iv', () => {
    const key = newSessionKey();
    expect(Buffer.from(key, 'base64')).toHaveLength(16);
    const plain = { nickName: '🐼熊猫', watermark: { appid: VECTOR.appid, timestamp: 1 } };
    const sealed = encryptOpenData(key, JSON.stringify(plain));
    expect(decryptUserData(new Secret(key), decodeEncryptedUserData(sealed))).toEqual(plain);
  });
});
