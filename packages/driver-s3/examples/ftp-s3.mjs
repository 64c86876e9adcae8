// ftp-s3.mjs — an FTP server whose users each get a prefix of one bucket.
import { FtpServer } from '@ftp/server';
import { S3Provider, UploadMemoryBudget } from '@ftp/driver-s3';

// One budget for the part buffers of every user's uploads: the process holds at most 256 MiB of them.
const uploadMemory = new UploadMemoryBudget(256 * 1024 * 1024);
const providers = new Map();
function home(user) {
  let p = providers.get(user);
  if (!p) {
    p = new S3Provider({
      bucket: process.env.BUCKET ?? 'ftp',
      prefix: `users/${user}/`,              // one bucket, many users: nothing outside the prefix is reachable
      region: process.env.AWS_REGION ?? 'us-east-1',
      endpoint: process.env.S3_ENDPOINT,     // e.g. http://127.0.0.1:9000 for MinIO; unset for AWS
      forcePathStyle: process.env.S3_ENDPOINT !== undefined,
      // credentials: { accessKeyId, secretAccessKey },  // default: the SDK's chain (env, profile, instance role…)
      partSize: 8 * 1024 * 1024,             // default 8 MiB (S3's minimum is 5 MiB)
      uploadConcurrency: 4,                  // parts in flight per upload (default 4)
      uploadMemory,                          // shared by all providers (default: 256 MiB per provider)
    });
    providers.set(user, p);
  }
  return p;
}

const users = { alice: 'wonderland', bob: 'builder' };
const server = new FtpServer({
  driver: { authenticate: (_s, user, pass) => (users[user] === pass ? { fs: home(user) } : null) },
});
const { port } = await server.listen(Number(process.env.PORT ?? 2121), '127.0.0.1');
console.log(`ftp://alice:wonderland@127.0.0.1:${port}`);
